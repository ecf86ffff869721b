"""The numpy processor cores: KGW bias, Gumbel-max draw (no torch needed)."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from reference import ref_gumbel, ref_kgw

from moat_mark import GumbelProcessor, KgwProcessor, Prf, VllmLogitsProcessor

KEY = bytes(range(100, 132))
#: P(chi-square with 3 degrees of freedom > x) = 1e-6.
CHI2_3DOF_1E6 = 30.66


@pytest.mark.parametrize(
    "mode,h", [("ordered", 0), ("ordered", 1), ("ordered", 2), ("selfhash", 1), ("selfhash", 3)]
)
@pytest.mark.parametrize("gamma", [0.1, 0.25, 0.5])
def test_kgw_green_fraction_is_gamma(mode: str, h: int, gamma: float) -> None:
    vocab = 200_000
    proc = KgwProcessor(KEY, gamma=gamma, delta=2.0, h=h, mode=mode)
    sd = math.sqrt(vocab * gamma * (1 - gamma))
    for context in ([7, 8, 9], [123456, 5, 42]):
        green = proc.green_mask(context, vocab)
        assert green is not None
        assert abs(int(green.sum()) - vocab * gamma) <= 5 * sd  # fails with probability ~6e-7


def test_kgw_apply_adds_delta_to_green_only() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(size=1000).astype(np.float32)
    logits[3] = -np.inf
    proc = KgwProcessor(KEY, gamma=0.25, delta=2.5, h=2)
    ids = [11, 12, 13]
    out = proc.apply(ids, logits)
    green = proc.green_mask(ids, 1000)
    assert out.dtype == np.float32 and out is not logits
    assert np.array_equal(out[~green], logits[~green])
    assert np.allclose(out[green], logits[green] + np.float32(2.5))  # -inf + 2.5 == -inf
    assert out[3] == -np.inf
    want = ref_kgw(KEY, 0.25, 2.5, "ordered", 2, ids, logits.astype(np.float64).tolist())
    assert np.allclose(out.astype(np.float64), np.array(want), atol=1e-6)
    # Only the last h ids matter.
    assert np.array_equal(proc.apply([99, 98, 12, 13], logits), out)


def test_kgw_needs_h_tokens() -> None:
    logits = np.arange(10, dtype=np.float64)
    proc = KgwProcessor(KEY, gamma=0.5, delta=1.0, h=3)
    assert proc.apply([1, 2], logits) is logits
    assert proc.green_mask([1, 2], 10) is None
    h0 = KgwProcessor(KEY, gamma=0.5, delta=1.0, h=0)
    assert not np.array_equal(h0.apply([], logits), logits)  # h = 0: one fixed green list
    assert np.array_equal(h0.apply([], logits), h0.apply([5, 6, 7], logits))


def test_kgw_validation() -> None:
    for gamma in (0.0, 1.0, -0.1, math.nan):
        with pytest.raises(ValueError, match="gamma"):
            KgwProcessor(KEY, gamma=gamma, delta=1.0)
    with pytest.raises(ValueError, match="delta"):
        KgwProcessor(KEY, gamma=0.5, delta=-1.0)
    with pytest.raises(ValueError, match="1-d"):
        KgwProcessor(KEY, gamma=0.5, delta=1.0).apply([1], np.zeros((2, 3)))


def _chi2(counts: np.ndarray, logits: np.ndarray, temperature: float) -> float:
    p = np.exp(logits / temperature)
    p /= p.sum()
    n = counts.sum()
    return float(((counts - n * p) ** 2 / (n * p)).sum())


def _gumbel_counts(proc: GumbelProcessor, logits: np.ndarray, n: int) -> np.ndarray:
    counts = np.zeros(len(logits))
    # n contexts with distinct last tokens: in selfhash mode the identity is (anchor, min, t),
    # so contexts sharing an anchor (and the token holding the minimum) share their uniforms
    # and would not be independent draws.
    for c in range(n):
        window = [c] if proc.h == 1 else [c // 1000, 1000 + c]
        token = proc.choose(window, logits)
        assert token is not None
        counts[token] += 1
    return counts


LOGITS4 = np.array([1.0, 0.2, -0.5, 0.9])


@pytest.mark.parametrize("h", [1, 2])
@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_gumbel_draws_over_contexts_follow_softmax(h: int, temperature: float) -> None:
    proc = GumbelProcessor(KEY, h=h, mode="ordered", temperature=temperature)
    counts = _gumbel_counts(proc, LOGITS4, 40_000)
    assert _chi2(counts, LOGITS4, temperature) < CHI2_3DOF_1E6, counts / counts.sum()


@pytest.mark.parametrize("h", [1, 2])
def test_gumbel_selfhash_draws_over_contexts_follow_softmax(h: int) -> None:
    proc = GumbelProcessor(KEY, h=h, mode="selfhash")
    counts = _gumbel_counts(proc, LOGITS4, 40_000)
    assert _chi2(counts, LOGITS4, 1.0) < CHI2_3DOF_1E6, counts / counts.sum()


@pytest.mark.parametrize("mode,h", [("ordered", 1), ("selfhash", 1), ("selfhash", 2)])
def test_gumbel_draw_at_one_position_over_keys_follows_softmax(mode: str, h: int) -> None:
    # For any one position, the draw under a random key is exactly softmax(logits / T).
    counts = np.zeros(4)
    for k in range(10_000):
        proc = GumbelProcessor(k.to_bytes(32, "little"), h=h, mode=mode)
        counts[proc.choose([17, 4242][-h:], LOGITS4)] += 1
    assert _chi2(counts, LOGITS4, 1.0) < CHI2_3DOF_1E6, counts / counts.sum()


def test_gumbel_is_deterministic_and_matches_reference() -> None:
    rng = np.random.default_rng(2)
    for mode, h, t in (
        ("ordered", 0, 1.0),
        ("ordered", 2, 0.7),
        ("selfhash", 1, 1.0),
        ("selfhash", 3, 2.0),
    ):
        proc = GumbelProcessor(KEY, h=h, mode=mode, temperature=t)
        for _ in range(20):
            ids = rng.integers(0, 50_000, size=5).tolist()
            logits = rng.normal(scale=3.0, size=64)
            token = proc.choose(ids, logits)
            assert token == ref_gumbel(KEY, mode, h, t, ids, logits.tolist())
            assert token == proc.choose(ids, logits)
            out = proc.apply(ids, logits)
            assert out[token] == logits[token]
            assert np.isinf(np.delete(out, token)).all()


def test_gumbel_masked_and_degenerate_rows() -> None:
    proc = GumbelProcessor(KEY, h=1)
    logits = np.full(50, -np.inf)
    logits[[7, 30]] = 0.0
    assert proc.choose([4], logits) in (7, 30)
    assert proc.choose([4], np.full(5, -np.inf)) is None
    row = np.full(5, -np.inf)
    assert proc.apply([4], row) is row
    # Ties in the Gumbel key go to the lowest id: with every logit equal to +inf, token 0.
    assert proc.choose([4], np.full(6, np.inf)) == 0
    short = np.zeros(5)
    assert GumbelProcessor(KEY, h=2).apply([1], short) is short
    assert GumbelProcessor(KEY, h=2).choose([1], short) is None


def test_gumbel_validation() -> None:
    for t in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="temperature"):
            GumbelProcessor(KEY, temperature=t)


def test_vllm_context_without_torch() -> None:
    proc = VllmLogitsProcessor.kgw(KEY, gamma=0.25, delta=2.0, h=3)
    assert proc.context([1, 2, 3, 4], [5, 6]) == [4, 5, 6]
    assert proc.context([1, 2, 3, 4], [5, 6, 7, 8]) == [6, 7, 8]
    assert proc.context([1], [5]) == [1, 5]
    assert proc.context([], []) == []
    assert VllmLogitsProcessor.gumbel(KEY, h=0).context([1], [2]) == []
    with pytest.raises(TypeError):
        VllmLogitsProcessor(Prf(KEY))  # type: ignore[arg-type]


def test_import_does_not_need_torch() -> None:
    code = (
        "import sys, moat_mark, moat_mark.processors\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
