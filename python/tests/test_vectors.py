"""Cross-implementation test vectors.

``vectors.json`` is written by the Rust side (``moat mark vectors --out
python/tests/vectors.json``); every case must match exactly (u64 values as integers, uniforms
bit for bit, chosen tokens, scored/green counts, biased f32 logits) or within the stated tolerances
(biased f64 logits 1e-6, Gumbel scores 1e-10 relative, log10 p 1e-9 relative). Logits rows
written from f32 are rebuilt as float32; masked (-inf) logits are written as null.

``vectors_python.json`` has the same format and is written by ``gen_python_vectors.py`` from
the independent naive transcription in ``reference.py``; it is always checked.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Dict, List, Optional

import numpy as np
import pytest

from moat_mark import (
    GumbelProcessor,
    KgwProcessor,
    Prf,
    derive_key,
    detect_gumbel,
    detect_kgw,
    key_id,
    prf_words,
    uniform,
)

HERE = os.path.dirname(os.path.abspath(__file__))
RUST_VECTORS = os.path.join(HERE, "vectors.json")
PYTHON_VECTORS = os.path.join(HERE, "vectors_python.json")
SECTIONS = ("keys", "prf", "kgw", "gumbel", "detect")


def _load(path: str) -> Dict[str, Any]:
    if not os.path.exists(path):
        pytest.skip(
            f"{os.path.relpath(path, HERE)} is absent: generate it with "
            "`moat mark vectors --out python/tests/vectors.json` (Rust side)"
        )
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    assert doc.get("scheme") == "moat-mark/v1", f"{path}: scheme is {doc.get('scheme')!r}"
    return doc


@pytest.fixture(params=[RUST_VECTORS, PYTHON_VECTORS], ids=["rust", "python"])
def vectors(request: pytest.FixtureRequest) -> Dict[str, Any]:
    return _load(request.param)


def _is_f32(x: float) -> bool:
    """Whether ``x`` is an f32 as JSON writes it: exactly (serde_json widens an f32 to f64 and
    writes the shortest f64 decimal, which reads back to the widened value) or as its
    shortest f32 decimal (which reads back to the nearest f64 of that decimal)."""
    f = np.float32(x)
    return math.isinf(x) or float(f) == x or float(str(f)) == x


def _floats(values: List[Optional[float]]) -> np.ndarray:
    """A logits row from JSON. serde_json writes non-finite floats as null; the only one a
    logits row holds is -inf. A row written from f32 (every entry an f32, see :func:`_is_f32`)
    is rebuilt as float32, so that its values are the writer's exactly; any other row is
    float64."""
    row = [-math.inf if v is None else float(v) for v in values]
    if all(_is_f32(x) for x in row):
        return np.array(row, dtype=np.float32)
    return np.array(row, dtype=np.float64)


def _key(case: Dict[str, Any]) -> bytes:
    return bytes.fromhex(case["key_hex"])


def test_every_section_present_and_nonempty(vectors: Dict[str, Any]) -> None:
    for section in SECTIONS:
        assert isinstance(vectors.get(section), list), section
        assert vectors[section], f"section {section} is empty"


def test_keys(vectors: Dict[str, Any]) -> None:
    for i, case in enumerate(vectors["keys"]):
        key = derive_key(bytes.fromhex(case["master_hex"]), case["scope"])
        assert key.hex() == case["key_hex"], f"keys[{i}]"
        assert key_id(key) == case["key_id"], f"keys[{i}]"
        assert prf_words(key) == (int(case["k0"]), int(case["k1"])), f"keys[{i}]"


def test_prf(vectors: Dict[str, Any]) -> None:
    for i, case in enumerate(vectors["prf"]):
        prf = Prf(_key(case), h=case["h"], mode=case["mode"])
        window, tokens = case["window"], case["tokens"]
        assert len(window) == case["h"], f"prf[{i}]: window length"
        expected = [int(v) for v in case["values"]]
        assert [int(v) for v in prf.values(window, tokens)] == expected, f"prf[{i}]: values"
        assert [prf.value(window, t) for t in tokens] == expected, f"prf[{i}]: scalar values"
        assert [uniform(v) for v in expected] == case["uniforms"], f"prf[{i}]: uniforms"
        # The full-vocabulary path agrees for the candidates it covers.
        small = [j for j, t in enumerate(tokens) if t < 4096]
        if small:
            u = prf.uniforms(window, 4096)
            got = [float(u[tokens[j]]) for j in small]
            assert got == [case["uniforms"][j] for j in small], f"prf[{i}]: uniforms table"


def test_kgw(vectors: Dict[str, Any]) -> None:
    for i, case in enumerate(vectors["kgw"]):
        proc = KgwProcessor(
            _key(case), gamma=case["gamma"], delta=case["delta"], h=case["h"], mode=case["mode"]
        )
        logits = _floats(case["logits"])
        got32 = proc.apply(case["input_ids"], logits)
        want32 = _floats(case["biased"])
        if logits.dtype == np.float32 and want32.dtype == np.float32:
            # f32 logits plus f32(delta), as the Rust side computes it: bit for bit.
            assert got32.dtype == np.float32, f"kgw[{i}]"
            assert np.array_equal(got32, want32), f"kgw[{i}]: {got32} != {want32}"
        got = got32.astype(np.float64)
        want = want32.astype(np.float64)
        assert got.shape == want.shape, f"kgw[{i}]"
        same_inf = np.isinf(got) & (got == want)
        close = np.abs(got - np.where(np.isinf(want), 0.0, want)) <= 1e-6 * np.maximum(
            1.0, np.abs(want)
        )
        assert bool(np.all(same_inf | close)), f"kgw[{i}]: {got} != {want}"


def test_gumbel(vectors: Dict[str, Any]) -> None:
    for i, case in enumerate(vectors["gumbel"]):
        proc = GumbelProcessor(
            _key(case), h=case["h"], mode=case["mode"], temperature=case["temperature"]
        )
        logits = _floats(case["logits"])
        assert proc.choose(case["input_ids"], logits) == case["token"], f"gumbel[{i}]"
        if case["token"] is not None:  # a masked (null, -inf) logit is never chosen
            assert case["logits"][case["token"]] is not None, f"gumbel[{i}]: masked token"


def test_cases_cover_masked_logits_deep_tails_and_both_modes(vectors: Dict[str, Any]) -> None:
    # Guards against a regenerated file silently losing the hard cases.
    masked = [c for c in vectors["gumbel"] if None in c["logits"]]
    assert masked, "no Gumbel case with masked (null) logits"
    assert any(c["token"] is not None for c in masked)
    assert min(c["log10_p"] for c in vectors["detect"]) < -20, "no deep tail"
    for section in ("prf", "kgw", "gumbel", "detect"):
        assert {c["mode"] for c in vectors[section]} == {"ordered", "selfhash"}, section
    assert all(c["scored"] > 0 for c in vectors["detect"])
    # The filter holds windows of exactly h ids (SCHEME.md, "Scoring rules"), not tuples.
    filtered = [c for c in vectors["detect"] if c.get("filter") is not None]
    assert {c["h"] for c in filtered} >= {0, 1}, "no filtered case at h = 0 and h = 1"
    for i, case in enumerate(filtered):
        assert all(len(w) == case["h"] for w in case["filter"]), f"filtered[{i}]: not windows"


def test_rust_logits_rows_are_float32() -> None:
    # The Rust side writes f32 logits (shortest f32 decimals, -inf as null): every row must be
    # rebuilt as float32, so the processors see the writer's values exactly.
    doc = _load(RUST_VECTORS)
    for section, fields in (("kgw", ("logits", "biased")), ("gumbel", ("logits",))):
        for i, case in enumerate(doc[section]):
            for field in fields:
                assert _floats(case[field]).dtype == np.float32, f"{section}[{i}].{field}"


def test_detect(vectors: Dict[str, Any]) -> None:
    for i, case in enumerate(vectors["detect"]):
        common = dict(
            h=case["h"],
            mode=case["mode"],
            prompts=case.get("prompts") or [],
            filter=case.get("filter"),
        )
        if case["scheme"] == "kgw":
            kgw = detect_kgw(_key(case), case["texts"], gamma=case["gamma"], **common)
            assert (kgw.scored, kgw.green) == (case["scored"], case["green"]), f"detect[{i}]"
            log10_p = kgw.log10_p
        else:
            assert case["scheme"] == "gumbel", f"detect[{i}]: scheme {case['scheme']!r}"
            gum = detect_gumbel(_key(case), case["texts"], **common)
            assert gum.scored == case["scored"], f"detect[{i}]"
            assert math.isclose(gum.score, case["score"], rel_tol=1e-10, abs_tol=1e-12), (
                f"detect[{i}]: score"
            )
            log10_p = gum.log10_p
        assert math.isclose(log10_p, case["log10_p"], rel_tol=1e-9, abs_tol=1e-12), (
            f"detect[{i}]: log10_p {log10_p!r} != {case['log10_p']!r}"
        )
