"""Scoring rules and exact p-values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from reference import ref_binomial_ln_sf, ref_detect, ref_gamma_ln_sf, ref_tuples

from moat_mark import (
    GumbelProcessor,
    KgwProcessor,
    NothingToScoreError,
    Prf,
    binomial_log_sf,
    detect_gumbel,
    detect_kgw,
    gamma_log_sf,
    scored_tuples,
    select_tuples,
)

KEY = bytes([42] * 32)
OTHER = bytes([43] * 32)


def _close(a: float, b: float, rel: float = 1e-12) -> bool:
    return a == b or math.isclose(a, b, rel_tol=rel, abs_tol=1e-14)


# -- scoring rules ------------------------------------------------------------------------------


def test_tuples_and_dedup_within_and_across_texts() -> None:
    assert scored_tuples([[1, 2, 3, 1, 2, 3]], h=1) == [(1, 2), (2, 3), (3, 1)]
    assert scored_tuples([[1, 2, 3], [0, 2, 3, 4]], h=1) == [(1, 2), (2, 3), (0, 2), (3, 4)]
    assert scored_tuples([[5, 6, 7]], h=2) == [(5, 6, 7)]
    assert scored_tuples([[5, 6]], h=2) == []
    assert scored_tuples([[4, 4, 5, 4]], h=0) == [(4,), (5,)]


def test_prompt_exclusion() -> None:
    prompts = [[1, 2, 3], [9, 8]]
    texts = [[1, 2, 3, 4], [7, 9, 8, 2, 3]]
    assert scored_tuples(texts, h=1, prompts=prompts) == [(3, 4), (7, 9), (8, 2)]
    # A prompt is scanned with the same window rule: (2, 3) after 1 is excluded at h = 2
    # only as the whole tuple (1, 2, 3).
    assert scored_tuples([[1, 2, 3], [0, 2, 3]], h=2, prompts=[[1, 2, 3]]) == [(0, 2, 3)]


def test_filter() -> None:
    # The filter holds windows (the h ids before the scored token), never the token itself.
    texts = [[1, 2, 3, 4, 1, 2]]
    assert scored_tuples(texts, h=1, filter=[[2], [4], [9]]) == [(2, 3), (4, 1)]
    assert scored_tuples(texts, h=1, filter=[]) == []
    assert scored_tuples(texts, h=1, prompts=[[4, 1]], filter=[[2], [4]]) == [(2, 3)]
    # Whatever token follows a window in the filter is scored (then de-duplicated).
    sel = select_tuples(Prf(KEY, h=1), [[1, 2, 1, 5, 1, 2]], filter=[[1]])
    assert sel.tuples == [(1, 2), (1, 5)]
    assert (sel.duplicates, sel.in_prompts, sel.filtered_out) == (1, 0, 2)
    assert scored_tuples([[5, 6, 7, 5, 6, 8]], h=2, filter=[[5, 6]]) == [(5, 6, 7), (5, 6, 8)]
    # h = 0: every window is empty, so the filter [[]] keeps every position.
    assert scored_tuples([[4, 4, 5, 4]], h=0, filter=[[]]) == [(4,), (5,)]
    assert scored_tuples([[4, 4, 5, 4]], h=0, filter=[]) == []
    # An entry must be a window of exactly h ids: a (window, token) tuple is refused.
    with pytest.raises(ValueError, match="filter\\[0\\] has 2 ids; .* exactly h = 1 ids"):
        scored_tuples(texts, h=1, filter=[[1, 2]])
    with pytest.raises(ValueError, match="filter\\[1\\] has 0 ids; .* exactly h = 2 ids"):
        scored_tuples(texts, h=2, filter=[[1, 2], []])
    with pytest.raises(ValueError, match="filter\\[0\\] has 1 ids; .* exactly h = 0 ids"):
        detect_kgw(KEY, texts, 0.25, h=0, filter=[[1]])
    with pytest.raises(ValueError, match="filter\\[0\\]: token id -1"):
        scored_tuples(texts, h=1, filter=[[-1]])


def test_rules_apply_in_order_prompt_filter_duplicate() -> None:
    # As the Rust Scorer: a position counts under the first rule that skips it, checked in the
    # order prompt exclusion, filter, duplicate.
    prf = Prf(KEY, h=1)
    sel = select_tuples(prf, [[1, 2, 1, 2, 5, 6, 5, 6]], prompts=[[5, 6, 7]])
    # (1,2) (2,1) (1,2)dup (2,5) (5,6)prompt (6,5) (5,6)prompt
    assert sel.tuples == [(1, 2), (2, 1), (2, 5), (6, 5)]
    assert (sel.duplicates, sel.in_prompts, sel.filtered_out) == (1, 2, 0)
    sel = select_tuples(prf, [[1, 2, 1, 2, 5, 6]], prompts=[[5, 6]], filter=[[1], [5]])
    # (1,2) (2,1)filtered (1,2)dup (2,5)filtered (5,6)prompt, though its window is in the filter
    assert sel.tuples == [(1, 2)]
    assert (sel.duplicates, sel.in_prompts, sel.filtered_out) == (1, 1, 2)
    # The counts come back with a detection result.
    r = detect_kgw(KEY, [[1, 2, 1, 2, 5, 6]], 0.5, prompts=[[5, 6]], filter=[[1], [5]])
    assert (r.scored, r.duplicates, r.in_prompts, r.filtered_out) == (1, 1, 1, 2)


def _selfhash_windows(prf: Prf):
    """(z, a, t, b1, b2) with ctx(z) below ctx(a), ctx(t), ctx(b1) and ctx(b2): in a window
    ``[b, z, a]`` before ``t``, anchor ``a`` and minimum-holding ``z`` fix the identity."""
    a, t = 10, 99
    z = next(c for c in range(1000, 100_000) if prf.ctx(c) < min(prf.ctx(a), prf.ctx(t)))
    b1, b2 = [c for c in range(200, 1000) if prf.ctx(c) > prf.ctx(z)][:2]
    return z, a, t, b1, b2


def test_selfhash_identities_repeat_across_windows() -> None:
    # Two selfhash windows with the same anchor and the same token holding the minimum give
    # the tuple the same identity, hence the same value: it is scored once, wherever in the
    # window the minimum sits and whatever the other window tokens are.
    prf = Prf(KEY, h=3, mode="selfhash")
    z, a, t, b1, b2 = _selfhash_windows(prf)
    texts = [[b1, z, a, t], [b2, z, a, t], [z, b2, a, t]]
    assert prf.identity([b1, z, a], t) == prf.identity([b2, z, a], t) == (a, prf.ctx(z), t)
    assert prf.value([b1, z, a], t) == prf.value([b2, z, a], t) == prf.value([z, b2, a], t)
    sel = select_tuples(prf, texts)
    assert sel.tuples == [(b1, z, a, t)] and sel.duplicates == 2
    assert scored_tuples(texts, 3, key=KEY, mode="selfhash") == [(b1, z, a, t)]
    for detect in (
        lambda **kw: detect_kgw(KEY, texts, 0.25, h=3, mode="selfhash", **kw),
        lambda **kw: detect_gumbel(KEY, texts, h=3, mode="selfhash", **kw),
    ):
        r = detect()
        assert (r.scored, r.duplicates, r.in_prompts, r.filtered_out) == (1, 2, 0, 0)
    # In ordered mode the three windows differ: three tuples.
    assert detect_kgw(KEY, texts, 0.25, h=3).scored == 3
    # Prompt exclusion works on identities too.
    with pytest.raises(NothingToScoreError, match="0 duplicates, 3 in prompts"):
        detect_kgw(KEY, texts, 0.25, h=3, mode="selfhash", prompts=[[b2, z, a, t]])
    # The window filter does not: it compares windows as plain id sequences, so [b1, z, a]
    # keeps the first text only, although the three tuples share one identity.
    r = detect_gumbel(KEY, texts + [[a, a, a, a]], h=3, mode="selfhash", filter=[[b1, z, a]])
    assert (r.scored, r.duplicates, r.filtered_out) == (1, 0, 3)
    r = detect_gumbel(
        KEY, texts + [[a, a, a, a]], h=3, mode="selfhash", filter=[[b1, z, a], [z, b2, a]]
    )
    assert (r.scored, r.duplicates, r.filtered_out) == (1, 1, 2)
    # A different anchor is a different identity.
    assert len(select_tuples(prf, [[b1, z, a, t], [b1, z, a + 1, t]]).tuples) == 2
    # The naive reference agrees.
    assert ref_tuples(KEY, "selfhash", texts, 3, [], None) == (sel.tuples, 2, 0, 0)


def test_selfhash_scored_tuples_needs_the_key() -> None:
    with pytest.raises(ValueError, match="key"):
        scored_tuples([[1, 2, 3]], 1, mode="selfhash")


def test_bad_token_ids() -> None:
    with pytest.raises(ValueError, match="texts\\[1\\]"):
        scored_tuples([[1], [2, -1]], h=1)
    with pytest.raises(ValueError, match="prompts\\[0\\]"):
        scored_tuples([[1]], h=1, prompts=[[2**32]])


def test_detect_matches_reference_on_small_cases() -> None:
    rng = np.random.default_rng(5)
    for mode, h in (("ordered", 0), ("ordered", 1), ("selfhash", 1), ("selfhash", 2)):
        texts = [rng.integers(0, 30, size=40).tolist() for _ in range(3)]
        texts.append(texts[0][:12])
        prompts = [texts[1][5:15]]
        # Every third scored tuple's window, and one window that occurs nowhere.
        filt = [list(t[:h]) for t in scored_tuples(texts, h, key=KEY, mode=mode)[::3]]
        filt.append([31] * h)
        for f in (None, filt):
            tuples, dup, inp, filtered = ref_tuples(KEY, mode, texts, h, prompts, f)
            sel = select_tuples(Prf(KEY, h=h, mode=mode), texts, prompts, f)
            assert (sel.tuples, sel.duplicates, sel.in_prompts, sel.filtered_out) == (
                tuples,
                dup,
                inp,
                filtered,
            )
            n, g, lp = ref_detect(KEY, "kgw", 0.25, mode, h, texts, prompts, f)
            got = detect_kgw(KEY, texts, 0.25, h=h, mode=mode, prompts=prompts, filter=f)
            assert (got.scored, got.green) == (n, g)
            assert _close(got.log10_p, lp, 1e-11)
            n, s, lp = ref_detect(KEY, "gumbel", None, mode, h, texts, prompts, f)
            gum = detect_gumbel(KEY, texts, h=h, mode=mode, prompts=prompts, filter=f)
            assert gum.scored == n and _close(gum.score, s, 1e-13)
            assert _close(gum.log10_p, lp, 1e-11)


def _generate(proc, vocab: int, length: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab, size=4).tolist()
    for _ in range(length):
        logits = rng.normal(scale=2.0, size=vocab)
        out = proc.apply(ids, logits)
        p = np.exp(out - out.max())
        ids.append(int(rng.choice(vocab, p=p / p.sum())))
    return ids[4:]


def test_watermarked_text_is_detected_and_other_keys_are_not() -> None:
    vocab = 2000
    kgw_text = _generate(KgwProcessor(KEY, gamma=0.25, delta=3.0, h=1), vocab, 300, seed=1)
    assert detect_kgw(KEY, [kgw_text], 0.25, h=1).log10_p < -20
    assert detect_kgw(OTHER, [kgw_text], 0.25, h=1).log10_p > -3
    gum_text = _generate(GumbelProcessor(KEY, h=2), vocab, 300, seed=2)
    assert detect_gumbel(KEY, [gum_text], h=2).log10_p < -20
    assert detect_gumbel(OTHER, [gum_text], h=2).log10_p > -3
    # Repeating the text adds nothing: every tuple is already scored.
    once = detect_gumbel(KEY, [gum_text], h=2)
    twice = detect_gumbel(KEY, [gum_text, gum_text], h=2)
    assert (twice.scored, twice.score, twice.log10_p) == (once.scored, once.score, once.log10_p)
    assert twice.duplicates == once.duplicates + len(gum_text) - 2
    # The text given as the prompt leaves nothing to score: an error, not p = 1.
    with pytest.raises(NothingToScoreError, match="in prompts"):
        detect_kgw(KEY, [kgw_text], 0.25, h=1, prompts=[kgw_text])


def test_window_filter_keeps_clean_text_calibrated() -> None:
    # SCHEME.md, "Scoring rules": the filter comes from watermarked (served) texts, so it must
    # select on windows only. A clean text scored where its windows occur in a strongly
    # watermarked text stays calibrated; selecting on the served (window, token) tuples, as
    # the filter did before, selects green tokens and makes the clean text look marked.
    vocab, gamma = 50, 0.25
    proc = KgwProcessor(KEY, gamma=gamma, delta=8.0, h=1)
    served = [0]
    for i in range(3000):  # nearly every tuple green: always a green token
        greens = np.flatnonzero(proc.green_mask(served, vocab))
        served.append(int(greens[(i * 31 + 7) % len(greens)]))
    own = detect_kgw(KEY, [served], gamma, h=1)
    assert own.log10_p < -50, own  # the served text itself is very significant
    # A clean text (no key involved) over twice the vocabulary: about half its positions
    # follow a window that the served text never has, and the filter drops them.
    clean = np.random.default_rng(11).integers(0, 2 * vocab, size=3000).tolist()
    windows = [served[i - 1 : i] for i in range(1, len(served))]
    r = detect_kgw(KEY, [clean], gamma, h=1, filter=windows)
    assert r.scored > 1000 and r.filtered_out > 1000 and r.log10_p > -4, r
    g = detect_gumbel(KEY, [clean], h=1, filter=windows)
    assert g.scored == r.scored and g.log10_p > -4, g
    # The old tuple filter: only the clean tuples that occur in the served text, each scored
    # as a two-token text. Those are the served text's (green) tuples: badly biased.
    served_tuples = {tuple(served[i - 1 : i + 1]) for i in range(1, len(served))}
    picked = [list(t) for t in scored_tuples([clean], h=1) if t in served_tuples]
    old = detect_kgw(KEY, picked, gamma, h=1)
    assert old.scored > 100 and old.green > 0.9 * old.scored and old.log10_p < -50, old
    # Without a key the unfiltered clean text is calibrated as well.
    assert detect_kgw(KEY, [clean], gamma, h=1).log10_p > -4


def test_nothing_to_score_is_an_error() -> None:
    with pytest.raises(ValueError, match="full window of 2 previous tokens") as e:
        detect_kgw(KEY, [[1, 2]], 0.5, h=2)
    assert "0 duplicates, 0 in prompts, 0 filtered out" in str(e.value)
    with pytest.raises(NothingToScoreError, match="0 duplicates, 0 in prompts, 0 filtered out"):
        detect_gumbel(KEY, [], h=1)
    # (1,2) and (1,2) outside the filter, (2,1) and (2,3) in the prompts (their window 2 is in
    # the filter, but prompt exclusion comes first).
    with pytest.raises(NothingToScoreError, match="0 duplicates, 2 in prompts, 2 filtered out"):
        detect_gumbel(KEY, [[1, 2, 1, 2, 3]], h=1, prompts=[[2, 1], [2, 3]], filter=[[2]])
    with pytest.raises(NothingToScoreError, match="0 duplicates, 0 in prompts, 4 filtered out"):
        detect_kgw(KEY, [[1, 2, 1, 2, 3]], 0.25, h=1, filter=[])
    assert issubclass(NothingToScoreError, ValueError)


# -- p-values against exact rational sums -------------------------------------------------------


@pytest.mark.parametrize("gamma", [0.25, 0.5, 0.1, 0.9, 1 / 3])
def test_binomial_tail_exact_small_n(gamma: float) -> None:
    for n in range(0, 41):
        for g in range(0, n + 2):
            want = ref_binomial_ln_sf(n, g, gamma)
            got = binomial_log_sf(n, g, gamma)
            assert _close(got, want, 1e-12), (n, g, got, want)


def test_binomial_tail_exact_larger_n() -> None:
    for n, g, gamma in (
        (1000, 250, 0.25),
        (1000, 300, 0.25),
        (1000, 600, 0.25),
        (1000, 1000, 0.25),
        (1000, 200, 0.25),
        (1000, 1, 0.25),
        (700, 100, 0.5),
        (500, 480, 0.9),
    ):
        assert _close(binomial_log_sf(n, g, gamma), ref_binomial_ln_sf(n, g, gamma), 1e-11), (n, g)


def test_binomial_tail_closed_forms() -> None:
    n = 100_000
    assert _close(binomial_log_sf(n, n, 0.25), n * math.log(0.25), 1e-12)
    assert binomial_log_sf(n, 0, 0.25) == 0.0
    assert binomial_log_sf(n, n + 1, 0.25) == -math.inf
    # P(X >= 1) = 1 - (1 - gamma)^n.
    assert _close(binomial_log_sf(50, 1, 0.25), math.log1p(-(0.75**50)), 1e-12)
    # Monotone in g around and beyond the mean.
    tails = [binomial_log_sf(n, g, 0.25) for g in range(24_000, 27_000, 100)]
    assert all(a > b for a, b in zip(tails, tails[1:]))
    assert -0.8 < binomial_log_sf(n, n // 4, 0.25) < -0.6  # near ln(1/2)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 10, 25, 60])
def test_gamma_tail_exact_small_n(n: int) -> None:
    for s in (
        1e-9,
        0.01,
        0.5,
        1.0,
        n / 3,
        n - 0.5,
        float(n),
        n + 0.5,
        1.5 * n,
        2.0 * n + 1,
        5.0 * n + 3,
        200.0,
    ):
        want = ref_gamma_ln_sf(n, s)
        got = gamma_log_sf(n, s)
        assert _close(got, want, 1e-11), (n, s, got, want)


def test_gamma_tail_exact_larger_n() -> None:
    for n, s in ((300, 300.0), (300, 250.5), (300, 420.25), (300, 900.0), (300, 20.0)):
        assert _close(gamma_log_sf(n, s), ref_gamma_ln_sf(n, s), 1e-11), (n, s)


def test_gamma_tail_closed_forms() -> None:
    assert _close(gamma_log_sf(1, 7.5), -7.5)  # exponential tail
    assert _close(gamma_log_sf(2, 3.0), -3.0 + math.log(4.0))
    assert gamma_log_sf(0, 5.0) == 0.0
    assert gamma_log_sf(5, 0.0) == 0.0
    assert gamma_log_sf(5, math.inf) == -math.inf
    with pytest.raises(ValueError):
        gamma_log_sf(5, math.nan)
    tails = [gamma_log_sf(10_000, s) for s in range(9_000, 12_000, 200)]
    assert all(a > b for a, b in zip(tails, tails[1:]))
