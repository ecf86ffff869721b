"""Detection: which tuples are scored, the test statistics and their exact p-values.

The Rust crate (``moat mark detect``) is Moat's detector; this module is its reference twin,
used by the test vectors and for quick checks next to an inference engine.

Scoring rules (SCHEME.md, "Scoring rules"): position ``i`` of a text is scorable once
``i >= h``; its tuple is the ``h`` window tokens plus the token at ``i``. The rules work on the
tuple's *identity* under the key (what its value is a function of: the tuple itself in
``ordered`` mode; the anchor ``x[i-1]``, the minimum ``m`` of ``ctx`` over the window and
``x[i]``, and ``x[i]`` in ``selfhash`` mode). A tuple is skipped if its identity occurs in one
of the given prompts, else, when a pre-registered filter is given, if the filter does not hold
its *window* (the ``h`` ids before ``x[i]``, as a plain sequence), else if its identity was
already scored (in this text or an earlier text of the same test). The filter holds windows and
never the scored token: the texts it is built from (outputs served to suspects) are
watermarked, so selecting on their (window, token) tuples would select green tokens and make
even a clean text look marked. A test with nothing left to score raises
:class:`NothingToScoreError` (a ``ValueError``), not p = 1.

p-values are exact tails computed in log space, summing the terms from the largest outward and
stopping once the rest provably cannot change the sum in double precision:

* KGW: ``P(Binomial(n, gamma) >= g)``;
* Gumbel-max: ``P(Gamma(n, 1) >= S) = P(Poisson(S) <= n - 1)``.

When the tail holds the largest term (p close to 1, ``ln p`` close to 0), ``ln p`` is taken as
``log1p(-q)`` from the complementary tail ``q`` so that it keeps its relative accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

import numpy as np

from .scheme import MAX_TOKEN_ID, Prf, check_mode, uniform_array

__all__ = [
    "KgwResult",
    "GumbelResult",
    "NothingToScoreError",
    "Selection",
    "scored_tuples",
    "select_tuples",
    "tuple_uniforms",
    "detect_kgw",
    "detect_gumbel",
    "binomial_log_sf",
    "gamma_log_sf",
]

LN10 = math.log(10.0)
LN2 = math.log(2.0)
#: Relative size below which the remaining terms of a tail sum are dropped.
_REL_EPS = 2.0**-60

TokenTuple = Tuple[int, ...]
#: The ``h`` ids before a scored token, as a plain sequence (what the filter holds).
Window = Tuple[int, ...]
#: A tuple's identity under the key (:meth:`moat_mark.Prf.identity`).
Identity = Tuple[int, ...]


@dataclass(frozen=True)
class KgwResult:
    """Outcome of a KGW test: ``green`` of ``scored`` tuples were green; ``log10_p`` is
    ``log10 P(Binomial(scored, gamma) >= green)``."""

    scored: int
    green: int
    log10_p: float
    #: Positions skipped as repeats of an identity already scored, as occurring in our
    #: prompts, and as outside the pre-registered filter.
    duplicates: int = 0
    in_prompts: int = 0
    filtered_out: int = 0


@dataclass(frozen=True)
class GumbelResult:
    """Outcome of a Gumbel-max test: ``score = sum(-ln(1 - u))`` over ``scored`` tuples;
    ``log10_p`` is ``log10 P(Gamma(scored, 1) >= score)``."""

    scored: int
    score: float
    log10_p: float
    #: Skipped positions, as in :class:`KgwResult`.
    duplicates: int = 0
    in_prompts: int = 0
    filtered_out: int = 0


# ----------------------------------------------------------------------------------------------
# scoring rules
# ----------------------------------------------------------------------------------------------


class NothingToScoreError(ValueError):
    """A test with nothing left to score: every position lacked a full window, repeated an
    identity already scored, occurred in our prompts or fell outside the filter. (An error,
    not ``p = 1``: SCHEME.md, "Scoring rules".)"""


@dataclass(frozen=True)
class Selection:
    """The tuples a test scores and the counts of those it skipped, by rule.

    ``tuples`` holds, in order, the first ``(x[i-h], ..., x[i-1], x[i])`` of every identity
    scored; ``in_prompts``, ``filtered_out`` and ``duplicates`` count the positions skipped
    by prompt exclusion, by the window filter and as repeats (each position counts under the first
    rule that skips it, in that order, as in the Rust ``Scorer``)."""

    tuples: List[TokenTuple]
    duplicates: int = 0
    in_prompts: int = 0
    filtered_out: int = 0


def _ids(tokens: Iterable[int], what: str) -> List[int]:
    out = [int(t) for t in tokens]
    for t in out:
        if not 0 <= t <= MAX_TOKEN_ID:
            raise ValueError(f"{what}: token id {t} is outside [0, 2**32)")
    return out


def _identities(
    prf: Optional[Prf], ids: Sequence[int], h: int
) -> Iterator[Tuple[TokenTuple, Identity]]:
    """``(tuple, identity)`` for every position ``i >= h`` of ``ids`` (SCHEME.md, "identity"):
    the tuple itself in ``ordered`` mode (``prf`` may then be ``None``); ``(x[i-1], m, x[i])``
    with ``m = min(ctx(c) for c in x[i-h..=i])`` in ``selfhash`` mode. Same values as
    :meth:`Prf.identity`, with ``ctx`` computed once per token."""
    if len(ids) <= h:
        return
    if prf is None or prf.mode == "ordered":
        for i in range(h, len(ids)):
            tup = tuple(ids[i - h : i + 1])
            yield tup, tup
        return
    c = [int(v) for v in prf.ctx_array(np.asarray(ids, dtype=np.uint64))]
    for i in range(h, len(ids)):
        yield tuple(ids[i - h : i + 1]), (ids[i - 1], min(c[i - h : i + 1]), ids[i])


def select_tuples(
    prf: Prf,
    texts: Iterable[Sequence[int]],
    prompts: Iterable[Sequence[int]] = (),
    filter: Optional[Iterable[Sequence[int]]] = None,
) -> Selection:
    """Applies the scoring rules under ``prf`` (whose key, ``h`` and mode define the tuples'
    identities) to ``texts``: for every position ``i >= h`` of every text, in order, the
    tuple is skipped if its identity occurs in ``prompts`` (scanned with the same window
    rule), else if a ``filter`` is given (windows of exactly ``h`` ids, compared as plain id
    sequences, not identities; for ``h = 0`` the empty window matches every position) and
    does not hold the window ``x[i-h..i]``, else if that identity was already scored.

    The filter never looks at the scored token ``x[i]``: build it from the windows of the
    served texts, not their tuples, or a watermarked source biases the test."""
    return _select(prf, prf.h, texts, prompts, filter)


def _select(
    prf: Optional[Prf],
    h: int,
    texts: Iterable[Sequence[int]],
    prompts: Iterable[Sequence[int]],
    filter: Optional[Iterable[Sequence[int]]],
) -> Selection:
    if h < 0:
        raise ValueError(f"h = {h} must be >= 0")
    excluded: Set[Identity] = set()
    for j, prompt in enumerate(prompts):
        excluded.update(ident for _, ident in _identities(prf, _ids(prompt, f"prompts[{j}]"), h))
    allowed: Optional[Set[Window]] = None
    if filter is not None:
        allowed = set()
        for j, entry in enumerate(filter):
            window = _ids(entry, f"filter[{j}]")
            if len(window) != h:
                raise ValueError(
                    f"filter[{j}] has {len(window)} ids; a filter entry is a window of "
                    f"exactly h = {h} ids"
                )
            allowed.add(tuple(window))
    seen: Set[Identity] = set()
    out: List[TokenTuple] = []
    duplicates = in_prompts = filtered_out = 0
    for j, text in enumerate(texts):
        for tup, ident in _identities(prf, _ids(text, f"texts[{j}]"), h):
            if ident in excluded:
                in_prompts += 1
            elif allowed is not None and tup[:h] not in allowed:
                filtered_out += 1
            elif ident in seen:
                duplicates += 1
            else:
                seen.add(ident)
                out.append(tup)
    return Selection(out, duplicates=duplicates, in_prompts=in_prompts, filtered_out=filtered_out)


def scored_tuples(
    texts: Iterable[Sequence[int]],
    h: int,
    prompts: Iterable[Sequence[int]] = (),
    filter: Optional[Iterable[Sequence[int]]] = None,
    *,
    key: Optional[bytes] = None,
    mode: str = "ordered",
) -> List[TokenTuple]:
    """The tuples a test scores, in order: ``(x[i-h], ..., x[i-1], x[i])`` for every position
    ``i >= h`` of every text whose identity (SCHEME.md) is not in ``prompts``, whose window
    ``x[i-h..i]`` is in ``filter`` when one is given (windows of exactly ``h`` ids), and whose
    identity was not scored before; see
    :func:`select_tuples`, which also returns the counts of skipped positions.

    In ``ordered`` mode the identity is the tuple itself and ``key`` is optional; in
    ``selfhash`` mode it is ``(x[i-1], m, x[i])`` with ``m`` the minimum of the keyed ``ctx``
    over the window and ``x[i]``, so ``key`` is required."""
    check_mode(mode, h)
    if key is None:
        if mode != "ordered":
            raise ValueError(f"{mode} identities depend on the key: pass key=")
        return _select(None, h, texts, prompts, filter).tuples
    return select_tuples(Prf(key, h=h, mode=mode), texts, prompts, filter).tuples


def tuple_uniforms(prf: Prf, tuples: Sequence[TokenTuple]) -> np.ndarray:
    """The uniform of each tuple's last token after its first ``h`` tokens (float64)."""
    if not tuples:
        return np.zeros(0, dtype=np.float64)
    arr = np.asarray(tuples, dtype=np.uint64).reshape(len(tuples), prf.h + 1)
    return uniform_array(prf.tuple_values(arr[:, : prf.h], arr[:, prf.h]))


def _scored_uniforms(
    prf: Prf,
    texts: Iterable[Sequence[int]],
    prompts: Iterable[Sequence[int]],
    filter: Optional[Iterable[Sequence[int]]],
) -> Tuple[np.ndarray, Selection]:
    """The uniforms of the scored tuples; raises :class:`NothingToScoreError` when none is."""
    sel = select_tuples(prf, texts, prompts, filter)
    if not sel.tuples:
        raise NothingToScoreError(
            f"nothing to score: no token had a full window of {prf.h} previous tokens that was "
            f"new, outside our prompts and inside the filter ({sel.duplicates} duplicates, "
            f"{sel.in_prompts} in prompts, {sel.filtered_out} filtered out)"
        )
    return tuple_uniforms(prf, sel.tuples), sel


# ----------------------------------------------------------------------------------------------
# tests
# ----------------------------------------------------------------------------------------------


def detect_kgw(
    key: bytes,
    texts: Iterable[Sequence[int]],
    gamma: float,
    h: int = 1,
    mode: str = "ordered",
    prompts: Iterable[Sequence[int]] = (),
    filter: Optional[Iterable[Sequence[int]]] = None,
) -> KgwResult:
    """KGW test of ``texts`` (token-id sequences) under ``key``: counts green tuples (``u <
    gamma``) and returns the exact binomial tail. Raises :class:`NothingToScoreError` (a
    ``ValueError``) when nothing is left to score."""
    check_mode(mode, h)
    if not 0.0 < gamma < 1.0:
        raise ValueError(f"gamma = {gamma} is outside (0, 1)")
    prf = Prf(key, h=h, mode=mode)
    u, sel = _scored_uniforms(prf, texts, prompts, filter)
    n = int(u.shape[0])
    green = int(np.count_nonzero(u < gamma))
    return KgwResult(
        scored=n,
        green=green,
        log10_p=binomial_log_sf(n, green, gamma) / LN10,
        duplicates=sel.duplicates,
        in_prompts=sel.in_prompts,
        filtered_out=sel.filtered_out,
    )


def detect_gumbel(
    key: bytes,
    texts: Iterable[Sequence[int]],
    h: int = 1,
    mode: str = "ordered",
    prompts: Iterable[Sequence[int]] = (),
    filter: Optional[Iterable[Sequence[int]]] = None,
) -> GumbelResult:
    """Gumbel-max test of ``texts`` under ``key``: ``S = sum(-ln(1 - u))`` over the scored
    tuples (each term computed as ``-log1p(-u)``, the sum correctly rounded with
    ``math.fsum``) and the exact Gamma tail. Raises :class:`NothingToScoreError` (a
    ``ValueError``) when nothing is left to score."""
    check_mode(mode, h)
    prf = Prf(key, h=h, mode=mode)
    u, sel = _scored_uniforms(prf, texts, prompts, filter)
    n = int(u.shape[0])
    terms = -np.log1p(-u)
    score = math.fsum(terms.tolist())
    return GumbelResult(
        scored=n,
        score=score,
        log10_p=gamma_log_sf(n, score) / LN10,
        duplicates=sel.duplicates,
        in_prompts=sel.in_prompts,
        filtered_out=sel.filtered_out,
    )


# ----------------------------------------------------------------------------------------------
# exact tails in log space
# ----------------------------------------------------------------------------------------------


def _log_sum_outward(log_term: Callable[[int], float], lo: int, hi: int, start: int) -> float:
    """``ln(sum(exp(log_term(k)) for k in lo..=hi))`` for a log-concave sequence whose largest
    term in ``[lo, hi]`` is at ``start``.

    Terms are added from ``start`` outward in both directions. Past the largest term of a
    log-concave sequence the ratio ``r`` of consecutive terms only decreases, so the rest of a
    direction is at most ``term * r / (1 - r)``; a direction stops once that bound is below
    ``2**-60`` of the running sum (or a term underflows to zero relative to the largest).
    """
    ref = log_term(start)
    parts = [1.0]
    total = 1.0
    for step in (1, -1):
        prev = ref
        k = start + step
        while lo <= k <= hi:
            lt = log_term(k)
            rel = math.exp(lt - ref)
            parts.append(rel)
            total += rel
            if rel == 0.0:
                break
            r = math.exp(lt - prev)
            if r < 1.0 and rel * r / (1.0 - r) <= _REL_EPS * total:
                break
            prev = lt
            k += step
    return ref + math.log(math.fsum(parts))


_UNBOUNDED = 1 << 62


def _log_one_minus(ln_q: float, direct: Callable[[], float]) -> float:
    """``ln(1 - q)`` from ``ln q`` while ``q <= 1/2`` (accurate), else ``direct()``."""
    if ln_q <= -LN2:
        return math.log1p(-math.exp(ln_q))
    return min(0.0, direct())


def binomial_log_sf(n: int, g: int, gamma: float) -> float:
    """``ln P(Binomial(n, gamma) >= g)``, exact up to double rounding (``-inf`` if ``g > n``)."""
    n, g = int(n), int(g)
    if n < 0:
        raise ValueError(f"n = {n} must be >= 0")
    if not 0.0 < gamma < 1.0:
        raise ValueError(f"gamma = {gamma} is outside (0, 1)")
    if g <= 0:
        return 0.0
    if g > n:
        return -math.inf
    ln_p = math.log(gamma)
    ln_q = math.log1p(-gamma)
    lg_n = math.lgamma(n + 1)

    def log_term(k: int) -> float:
        return lg_n - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * ln_p + (n - k) * ln_q

    mode = min(n, int(math.floor((n + 1) * gamma)))
    if mode < g:  # the tail lies beyond the largest term: p <= 1/2-ish, summed directly
        return _log_sum_outward(log_term, g, n, g)
    # The tail holds the largest term, so p is near 1 and ln p near 0: take it from the lower
    # tail, ln p = log1p(-P(X <= g - 1)), which keeps its relative accuracy.
    return _log_one_minus(
        _log_sum_outward(log_term, 0, g - 1, g - 1), lambda: _log_sum_outward(log_term, g, n, mode)
    )


def gamma_log_sf(n: int, s: float) -> float:
    """``ln P(Gamma(n, 1) >= s)`` for integer ``n >= 0``, as ``ln P(Poisson(s) <= n - 1)``."""
    n = int(n)
    s = float(s)
    if n < 0:
        raise ValueError(f"n = {n} must be >= 0")
    if math.isnan(s):
        raise ValueError("the score is NaN")
    if n == 0 or s <= 0.0:
        return 0.0
    if math.isinf(s):
        return -math.inf
    ln_s = math.log(s)

    def log_term(k: int) -> float:
        return -s + k * ln_s - math.lgamma(k + 1)

    mode = int(math.floor(s))
    if mode > n - 1:  # the sum lies below the largest Poisson term: p small-ish, summed directly
        return _log_sum_outward(log_term, 0, n - 1, n - 1)
    # The sum holds the largest term, so p is near 1: take it from the complement,
    # ln p = log1p(-P(Poisson(s) >= n)) (an infinite sum that the stopping rule ends).
    return _log_one_minus(
        _log_sum_outward(log_term, n, _UNBOUNDED, n),
        lambda: _log_sum_outward(log_term, 0, n - 1, mode),
    )
