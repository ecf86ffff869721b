"""Writes ``vectors_python.json``: test vectors in the format of the Rust side's ``vectors.json``
(``moat mark vectors``), computed by the independent reference in ``reference.py``.

They exercise ``test_vectors.py`` before the Rust file exists and pin the Python
implementation to a second transcription of the spec. Regenerate with::

    python tests/gen_python_vectors.py          # from python/, any Python >= 3.9, no numpy
"""

from __future__ import annotations

import json
import math
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from reference import (  # noqa: E402
    ref_derive,
    ref_detect,
    ref_gumbel,
    ref_key_id,
    ref_kgw,
    ref_uniform,
    ref_value,
    ref_words,
)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vectors_python.json")


def softmax_sample(rng: random.Random, logits):
    top = max(logits)
    w = [math.exp(x - top) for x in logits]
    r = rng.random() * sum(w)
    for t, x in enumerate(w):
        r -= x
        if r <= 0:
            return t
    return len(w) - 1


def main() -> None:
    rng = random.Random(20240601)
    masters = [bytes(range(32)), bytes([0xA5] * 32), bytes(rng.getrandbits(8) for _ in range(32))]
    scopes = ["campaign:a", "cohort:eu-free", "campaign:c-42", "test:ünïcode"]

    keys = []
    for master in masters:
        for scope in scopes[:2] if master != masters[2] else scopes:
            key = ref_derive(master, scope)
            k0, k1 = ref_words(key)
            keys.append(
                {
                    "master_hex": master.hex(),
                    "scope": scope,
                    "key_hex": key.hex(),
                    "key_id": ref_key_id(key),
                    "k0": str(k0),
                    "k1": str(k1),
                }
            )
    key_a = bytes.fromhex(keys[0]["key_hex"])
    key_b = bytes.fromhex(keys[-1]["key_hex"])

    prf = []
    for key in (key_a, key_b):
        for mode, hs in (("ordered", (0, 1, 2, 4)), ("selfhash", (1, 2, 3))):
            for h in hs:
                window = [rng.randrange(0, 50_000) for _ in range(h)]
                if h >= 2:
                    window[0] = 2**32 - 1  # the largest token id
                tokens = [0, 1, 2, 2**32 - 1] + [rng.randrange(0, 200_000) for _ in range(8)]
                if h:
                    tokens.append(window[-1])  # a candidate equal to the anchor
                values = [ref_value(key, mode, window, t) for t in tokens]
                prf.append(
                    {
                        "key_hex": key.hex(),
                        "mode": mode,
                        "h": h,
                        "window": window,
                        "tokens": tokens,
                        "values": [str(v) for v in values],
                        "uniforms": [ref_uniform(v) for v in values],
                    }
                )

    vocab = 24
    kgw = []
    for mode, h, gamma, delta in (
        ("ordered", 0, 0.25, 2.0),
        ("ordered", 1, 0.25, 2.0),
        ("ordered", 2, 0.5, 1.5),
        ("selfhash", 1, 0.25, 4.0),
        ("selfhash", 3, 0.1, 2.0),
        ("ordered", 3, 0.25, 2.0),  # fewer than h ids: unchanged
    ):
        n_ids = 2 if (h == 3 and mode == "ordered") else 5
        ids = [rng.randrange(0, 100_000) for _ in range(n_ids)]
        logits = [rng.gauss(0.0, 3.0) for _ in range(vocab)]
        logits[5] = -1e30  # a masked-out token stays masked
        kgw.append(
            {
                "key_hex": key_a.hex(),
                "gamma": gamma,
                "delta": delta,
                "mode": mode,
                "h": h,
                "input_ids": ids,
                "logits": logits,
                "biased": ref_kgw(key_a, gamma, delta, mode, h, ids, logits),
            }
        )

    gumbel = []
    for mode, h, temperature in (
        ("ordered", 0, 1.0),
        ("ordered", 1, 1.0),
        ("ordered", 2, 0.7),
        ("selfhash", 1, 1.0),
        ("selfhash", 2, 1.3),
        ("ordered", 1, 0.05),
    ):
        # Twice unmasked, once with every third logit masked (-inf, written as null like the
        # Rust side's serde_json), and once with every logit masked (nothing is chosen).
        for masked in (None, None, 3, 1):
            ids = [rng.randrange(0, 100_000) for _ in range(4)]
            logits = [rng.gauss(0.0, 2.0) for _ in range(vocab)]
            if masked is not None:
                for t in range(0, vocab, masked):
                    logits[t] = -math.inf
            token = ref_gumbel(key_b, mode, h, temperature, ids, logits)
            gumbel.append(
                {
                    "key_hex": key_b.hex(),
                    "mode": mode,
                    "h": h,
                    "temperature": temperature,
                    "input_ids": ids,
                    "logits": [None if math.isinf(x) else x for x in logits],
                    "token": token,
                }
            )

    def generate(scheme, key, mode, h, length, prompt, gamma=0.25, delta=3.0):
        ids = list(prompt)
        for _ in range(length):
            logits = [rng.gauss(0.0, 1.0) for _ in range(vocab)]
            if scheme == "kgw":
                ids.append(softmax_sample(rng, ref_kgw(key, gamma, delta, mode, h, ids, logits)))
            else:
                tok = ref_gumbel(key, mode, h, 1.0, ids, logits)
                ids.append(softmax_sample(rng, logits) if tok is None else tok)
        return ids[len(prompt) :]

    detect = []
    for scheme in ("kgw", "gumbel"):
        for mode, h, length in (
            ("ordered", 1, 30),
            ("ordered", 0, 30),
            ("selfhash", 2, 30),
            ("ordered", 2, 30),
            ("selfhash", 1, 150),  # long watermarked texts: deep tails
            ("ordered", 1, 150),
        ):
            prompt = [rng.randrange(vocab) for _ in range(6)]
            texts = [generate(scheme, key_a, mode, h, length, prompt) for _ in range(2)]
            texts.append(list(texts[0][:10]))  # a repeat: de-duplicated away
            texts.append(list(prompt))  # the prompt copied: excluded
            texts.append([rng.randrange(vocab) for _ in range(15)])  # unwatermarked noise
            for filt in (None, "half"):
                f = None
                if filt == "half":
                    # Windows (h ids), never tuples: every other window of the texts, and
                    # one that occurs nowhere. At h = 0 every window is [] (all positions).
                    windows = [list(t[i - h : i]) for t in texts for i in range(h, len(t))]
                    f = windows[::2] + [[vocab + 1] * h]
                gamma = 0.25 if scheme == "kgw" else None
                n, stat, log10_p = ref_detect(key_a, scheme, gamma, mode, h, texts, [prompt], f)
                case = {"key_hex": key_a.hex(), "scheme": scheme}
                if scheme == "kgw":
                    case["gamma"] = gamma
                case.update(
                    {
                        "mode": mode,
                        "h": h,
                        "texts": texts,
                        "prompts": [prompt],
                        "filter": f,
                        "scored": n,
                    }
                )
                case["green" if scheme == "kgw" else "score"] = stat
                case["log10_p"] = log10_p
                detect.append(case)
    # A key that does not match (p near 1). (Nothing to score is an error, not a vector.)
    texts = detect[0]["texts"]
    n, s, lp = ref_detect(key_b, "gumbel", None, "ordered", 1, texts, [], None)
    detect.append(
        {
            "key_hex": key_b.hex(),
            "scheme": "gumbel",
            "mode": "ordered",
            "h": 1,
            "texts": texts,
            "prompts": [],
            "filter": None,
            "scored": n,
            "score": s,
            "log10_p": lp,
        }
    )

    doc = {
        "scheme": "moat-mark/v1",
        "keys": keys,
        "prf": prf,
        "kgw": kgw,
        "gumbel": gumbel,
        "detect": detect,
    }
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(
        f"wrote {OUT}: " + ", ".join(f"{k} {len(v)}" for k, v in doc.items() if isinstance(v, list))
    )


if __name__ == "__main__":
    main()
