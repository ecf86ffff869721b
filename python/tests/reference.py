"""An independent, deliberately naive transcription of SCHEME.md for cross-checking.

It shares no code with ``moat_mark``: plain Python ints masked to 64 bits, one value at a time,
HKDF written out from RFC 5869, and p-values as exact rational sums (``fractions.Fraction``)
turned into a logarithm only at the end, with 200-digit ``decimal`` arithmetic. Slow, and only
meant for small cases.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import struct
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import List, Optional, Sequence, Set, Tuple

M64 = 0xFFFFFFFFFFFFFFFF
GOLDEN = 0x9E3779B97F4A7C15


def ref_mix(x: int) -> int:
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) % (1 << 64)
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) % (1 << 64)
    return x ^ (x >> 31)


def ref_uniform(v: int) -> float:
    # ((v >> 12) + 0.5) * 2^-52 = (2m + 1) / 2^53 exactly (53 significant bits at most).
    u = Fraction(2 * (v >> 12) + 1, 2**53)
    assert float(u) == u
    return float(u)


def ref_hkdf(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    prk = hmac.new(salt or b"\x00" * 32, ikm, "sha256").digest()
    okm, t, i = b"", b"", 0
    while len(okm) < length:
        i += 1
        t = hmac.new(prk, t + info + bytes([i]), "sha256").digest()
        okm += t
    return okm[:length]


def ref_derive(master: bytes, scope: str) -> bytes:
    return ref_hkdf(master, b"moat-mark/v1", scope.encode(), 32)


def ref_key_id(key: bytes) -> str:
    return hashlib.sha256(b"moat-mark/key-id/v1" + key).hexdigest()[:16]


def ref_words(key: bytes) -> Tuple[int, int]:
    k0, k1 = struct.unpack("<QQ", hashlib.sha256(b"moat-mark/prf/v1" + key).digest()[:16])
    return k0, k1


def ref_value(key: bytes, mode: str, window: Sequence[int], t: int) -> int:
    k0, k1 = ref_words(key)

    def tok(x: int) -> int:
        return ref_mix(k1 ^ ((x + GOLDEN) & M64))

    def ctx(x: int) -> int:
        return ref_mix(k0 ^ ((x * GOLDEN) & M64))

    if mode == "ordered":
        s = k0
        for c in window:
            s = ref_mix(s ^ ctx(c))
    else:
        m = min([ctx(c) for c in window] + [ctx(t)])
        a = ref_mix(ctx(window[-1]) ^ k1)
        s = ref_mix(a ^ m)
    return ref_mix(s ^ tok(t))


def ref_identity(key: bytes, mode: str, window: Sequence[int], t: int) -> Tuple[int, ...]:
    """What the value of t after window is a function of besides the key (SCHEME.md)."""
    if mode == "ordered":
        return tuple(window) + (t,)
    k0, _ = ref_words(key)
    m = min(ref_mix(k0 ^ ((x * GOLDEN) & M64)) for x in list(window) + [t])
    return (window[-1], m, t)


def ref_kgw(
    key: bytes,
    gamma: float,
    delta: float,
    mode: str,
    h: int,
    ids: Sequence[int],
    logits: Sequence[float],
) -> List[float]:
    if len(ids) < h:
        return list(logits)
    window = list(ids[len(ids) - h :]) if h else []
    return [
        x + delta if ref_uniform(ref_value(key, mode, window, t)) < gamma else x
        for t, x in enumerate(logits)
    ]


def ref_gumbel(
    key: bytes, mode: str, h: int, temperature: float, ids: Sequence[int], logits: Sequence[float]
) -> Optional[int]:
    if len(ids) < h:
        return None
    window = list(ids[len(ids) - h :]) if h else []
    best, best_key = None, -math.inf
    for t, x in enumerate(logits):
        if math.isnan(x) or x == -math.inf:  # masked: never chosen
            continue
        u = ref_uniform(ref_value(key, mode, window, t))
        k = x / temperature - math.log(-math.log(u))
        if best is None or k > best_key:  # strict: ties keep the lowest id
            best, best_key = t, k
    return best


def ref_tuples(
    key: bytes, mode: str, texts, h: int, prompts, filt
) -> Tuple[List[Tuple[int, ...]], int, int, int]:
    """(scored tuples, duplicates, in prompts, filtered out): each position's identity is
    checked against the prompts, then its window (the h ids before the token, as a plain
    list) against the filter of windows, then its identity against those already scored."""

    def grams(seq):
        return [tuple(seq[i - h : i + 1]) for i in range(h, len(seq))]

    def ident(g):
        return ref_identity(key, mode, list(g[:h]), g[h])

    banned: Set[Tuple[int, ...]] = set()
    for p in prompts:
        banned |= {ident(g) for g in grams(p)}
    allowed = None
    if filt is not None:
        assert all(len(w) == h for w in filt), "a filter entry is a window of h ids"
        allowed = [list(w) for w in filt]  # compared by plain list equality, one by one
    seen: Set[Tuple[int, ...]] = set()
    out = []
    dup = inp = filtered = 0
    for text in texts:
        for g in grams(text):
            i = ident(g)
            if i in banned:
                inp += 1
            elif allowed is not None and list(g[:h]) not in allowed:
                filtered += 1
            elif i in seen:
                dup += 1
            else:
                seen.add(i)
                out.append(g)
    return out, dup, inp, filtered


def _ln_decimal(x: Decimal) -> float:
    return float(x.ln()) if x != 1 else 0.0


def _ln_fraction(x: Fraction) -> float:
    # 200 significant digits: ln x keeps full double accuracy even when x is within 1e-100
    # of 1 (where ln(num) - ln(den) in doubles would cancel).
    with localcontext() as ctx:
        ctx.prec = 200
        return _ln_decimal(Decimal(x.numerator) / Decimal(x.denominator))


def ref_binomial_ln_sf(n: int, g: int, gamma: float) -> float:
    """ln P(Binomial(n, gamma) >= g), the sum exact in rationals (gamma's exact double value)."""
    if g <= 0:
        return 0.0
    if g > n:
        return -math.inf
    p = Fraction(gamma)
    q = 1 - p
    total = sum(math.comb(n, k) * p**k * q ** (n - k) for k in range(g, n + 1))
    return _ln_fraction(total)


def ref_gamma_ln_sf(n: int, s: float) -> float:
    """ln P(Gamma(n, 1) >= s) = -s + ln(sum_{k<n} s^k / k!), the sum exact in rationals."""
    if n == 0 or s <= 0:
        return 0.0
    x = Fraction(s)
    total = Fraction(0)
    term = Fraction(1)
    for k in range(n):
        if k:
            term = term * x / k
        total += term
    with localcontext() as ctx:
        ctx.prec = 200
        p = Decimal(-s).exp() * Decimal(total.numerator) / Decimal(total.denominator)
        return _ln_decimal(p)


def ref_detect(
    key: bytes, scheme: str, gamma: Optional[float], mode: str, h: int, texts, prompts, filt
):
    tuples, dup, inp, filtered = ref_tuples(key, mode, texts, h, prompts, filt)
    if not tuples:
        raise ValueError(
            f"nothing to score ({dup} duplicates, {inp} in prompts, {filtered} filtered out)"
        )
    us = [ref_uniform(ref_value(key, mode, list(tp[:h]), tp[h])) for tp in tuples]
    n = len(us)
    if scheme == "kgw":
        assert gamma is not None
        g = sum(1 for u in us if u < gamma)
        return n, g, ref_binomial_ln_sf(n, g, gamma) / math.log(10)
    s = math.fsum(-math.log1p(-u) for u in us)
    return n, s, ref_gamma_ln_sf(n, s) / math.log(10)
