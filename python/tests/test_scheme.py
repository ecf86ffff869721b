"""Self-consistency of the PRF and the keys (no other implementation needed)."""

from __future__ import annotations

import hashlib
import random
import struct
from fractions import Fraction

import numpy as np
import pytest
from reference import ref_identity, ref_mix, ref_value

from moat_mark import (
    Prf,
    derive_key,
    hkdf_sha256,
    key_id,
    mix,
    mix_array,
    parse_key_hex,
    parse_key_id,
    prf_words,
    uniform,
    uniform_array,
)
from moat_mark.scheme import G

KEY = bytes(range(32))
EDGES = [0, 1, 2**32 - 1, 2**32, 2**53 - 1, 2**63 - 1, 2**63, 2**64 - 2, 2**64 - 1, G]


def _randoms(n: int, seed: int = 7) -> list:
    rng = random.Random(seed)
    return EDGES + [rng.getrandbits(64) for _ in range(n)]


# -- mix ----------------------------------------------------------------------------------------


def test_mix_is_splitmix64() -> None:
    # SplitMix64 from state 0: the first output is mix(0 + G), a published constant.
    assert mix(G) == 0xE220A8397B1DCDAF
    assert mix(0) == 0


def test_mix_scalar_and_array_agree_with_plain_ints() -> None:
    xs = _randoms(2000)
    want = [ref_mix(x) for x in xs]
    assert [mix(x) for x in xs] == want
    got = mix_array(np.array(xs, dtype=np.uint64))
    assert got.dtype == np.uint64
    assert [int(v) for v in got] == want


def test_mix_array_keeps_shape_and_does_not_mutate() -> None:
    xs = np.array(_randoms(11), dtype=np.uint64)[:12].reshape(3, 4)
    before = xs.copy()
    out = mix_array(xs)
    assert out.shape == (3, 4)
    assert np.array_equal(xs, before)
    assert int(mix_array(np.uint64(G))) == mix(G)  # 0-d input, no overflow warning


# -- uniforms -----------------------------------------------------------------------------------


def test_uniform_is_exact() -> None:
    # u = ((v >> 12) + 0.5) * 2^-52 is exactly (2m + 1) / 2^53: no rounding anywhere.
    for v in _randoms(5000, seed=3):
        m = v >> 12
        assert Fraction(uniform(v)) == Fraction(2 * m + 1, 2**53), v
    xs = _randoms(5000, seed=4)
    assert uniform_array(np.array(xs, dtype=np.uint64)).tolist() == [uniform(v) for v in xs]


def test_uniform_range() -> None:
    assert uniform(0) == 2.0**-53
    assert uniform(2**64 - 1) == 1.0 - 2.0**-53
    assert uniform(2**63) == 0.5 + 2.0**-53
    xs = np.array(_randoms(100_000, seed=5), dtype=np.uint64)
    u = uniform_array(xs)
    assert u.dtype == np.float64
    assert np.all((u > 0.0) & (u < 1.0))


def test_prf_uniforms_strictly_inside_unit_interval() -> None:
    for mode, h in (("ordered", 1), ("selfhash", 2)):
        u = Prf(KEY, h=h, mode=mode).uniforms([3, 4][:h], 200_000)
        assert np.all((u > 0.0) & (u < 1.0))


# -- keys ---------------------------------------------------------------------------------------


def test_hkdf_rfc5869_test_case_1() -> None:
    ikm = bytes([0x0B] * 22)
    salt = bytes(range(0x00, 0x0D))
    info = bytes(range(0xF0, 0xFA))
    okm = hkdf_sha256(ikm, salt, info, 42)
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


def test_hkdf_rfc5869_test_case_3_empty_salt_and_info() -> None:
    okm = hkdf_sha256(bytes([0x0B] * 22), b"", b"", 42)
    assert okm.hex() == (
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    )


def test_derive_key() -> None:
    master = bytes([9] * 32)
    a = derive_key(master, "campaign:a")
    assert len(a) == 32
    assert a == derive_key(master, "campaign:a")
    assert a != derive_key(master, "campaign:b")
    assert a != master
    assert a == hkdf_sha256(master, b"moat-mark/v1", b"campaign:a", 32)
    with pytest.raises(ValueError, match="32 bytes"):
        derive_key(b"short", "campaign:a")


def test_key_id_and_prf_words() -> None:
    kid = key_id(KEY)
    assert len(kid) == 16 and kid == kid.lower() and int(kid, 16) >= 0
    assert kid == hashlib.sha256(b"moat-mark/key-id/v1" + KEY).hexdigest()[:16]
    digest = hashlib.sha256(b"moat-mark/prf/v1" + KEY).digest()
    assert prf_words(KEY) == struct.unpack("<QQ", digest[:16])
    with pytest.raises(TypeError):
        key_id(KEY.hex())  # type: ignore[arg-type]


def test_parse_hex() -> None:
    assert parse_key_hex(" " + KEY.hex().upper() + "\n") == KEY
    with pytest.raises(ValueError, match="found 3"):
        parse_key_hex("abc")
    with pytest.raises(ValueError, match="position 62"):
        parse_key_hex("0" * 62 + "zz")
    assert parse_key_id(" 0123456789ABCDEF ") == "0123456789abcdef"
    with pytest.raises(ValueError):
        parse_key_id("0123")


# -- the PRF ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mode,h", [("ordered", 0), ("ordered", 1), ("ordered", 3), ("selfhash", 1), ("selfhash", 4)]
)
def test_prf_paths_agree_with_reference(mode: str, h: int) -> None:
    rng = random.Random(h * 31 + len(mode))
    prf = Prf(KEY, h=h, mode=mode)
    for _ in range(5):
        window = [rng.randrange(0, 2**32) for _ in range(h)]
        tokens = [rng.randrange(0, 300) for _ in range(20)] + [2**32 - 1]
        want = [ref_value(KEY, mode, window, t) for t in tokens]
        assert [prf.value(window, t) for t in tokens] == want
        assert [int(v) for v in prf.values(window, tokens)] == want
        table = prf.all_values(window, 300)
        assert [int(table[t]) for t in tokens[:-1]] == want[:-1]
        windows = np.array([window] * len(tokens), dtype=np.uint64).reshape(len(tokens), h)
        assert [int(v) for v in prf.tuple_values(windows, tokens)] == want
        assert prf.uniforms(window, 300).tolist() == [uniform(int(v)) for v in table]


def test_prf_tables_grow_and_are_vocab_independent() -> None:
    prf = Prf(KEY, h=1, mode="selfhash")
    small = prf.uniforms([5], 10)
    large = prf.uniforms([5], 1000)
    assert np.array_equal(small, large[:10])
    assert np.array_equal(prf.uniforms([5], 10), small)
    with pytest.raises(ValueError):
        prf.tok_table(10)[0] = 0  # read-only view


def test_ordered_seed() -> None:
    k0, _ = prf_words(KEY)
    assert Prf(KEY, h=0).seed([]) == k0
    p = Prf(KEY, h=2)
    assert p.seed([1, 2]) == mix(mix(k0 ^ p.ctx(1)) ^ p.ctx(2))
    assert p.value([1, 2], 5) != p.value([2, 1], 5)
    assert p.value([1, 2], 5) != Prf(bytes(32), h=2).value([1, 2], 5)


def test_selfhash_ignores_non_minimal_window_tokens() -> None:
    p = Prf(KEY, h=3, mode="selfhash")
    a, t = 10, 99
    floor = min(p.ctx(a), p.ctx(t))
    high = [c for c in range(100, 400) if p.ctx(c) > floor][:2]
    assert len(high) == 2
    b1, b2 = high
    assert p.value([b1, a, a], t) == p.value([b2, a, a], t)
    assert p.value([a, a, b1], t) != p.value([a, a, b2], t)  # the anchor always matters


def test_selfhash_anchor_holding_the_minimum_still_seeds() -> None:
    # With s(t) = mix(ctx(x[i-1]) ^ m) the seed cancelled to mix(0) = 0 whenever the anchor
    # held the minimum; a = mix(ctx(x[i-1]) ^ k1) keeps every such context distinct.
    p = Prf(KEY, h=1, mode="selfhash")
    _, k1 = prf_words(KEY)
    t = 5
    anchors = [a for a in range(2000) if p.ctx(a) < p.ctx(t)][:20]
    assert len(anchors) == 20
    assert len({p.value([a], t) for a in anchors}) == 20
    a = anchors[0]
    anchor, m = p.selfhash_parts([a])
    assert (anchor, m) == (mix(p.ctx(a) ^ k1), p.ctx(a))
    assert p.value([a], t) == mix(mix(anchor ^ p.ctx(a)) ^ p.tok(t))
    assert int(p.values([a], [t])[0]) == p.value([a], t)
    assert int(p.tuple_values([[a]], [t])[0]) == p.value([a], t)
    assert int(p.all_values([a], t + 1)[t]) == p.value([a], t)


@pytest.mark.parametrize("mode,h", [("ordered", 0), ("ordered", 2), ("selfhash", 1), ("selfhash", 3)])
def test_identity(mode: str, h: int) -> None:
    p = Prf(KEY, h=h, mode=mode)
    rng = random.Random(11 + h)
    for _ in range(50):
        window = [rng.randrange(0, 40) for _ in range(h)]
        t = rng.randrange(0, 40)
        ident = p.identity(window, t)
        assert ident == ref_identity(KEY, mode, window, t)
        if mode == "ordered":
            assert ident == (*window, t)
        else:
            assert ident == (window[-1], min(p.ctx(c) for c in window + [t]), t)
    # Equal identities, equal values (selfhash: non-minimal window tokens are not part of it).
    if mode == "selfhash" and h == 3:
        a, t = 10, 99
        floor = min(p.ctx(a), p.ctx(t))
        b1, b2 = [c for c in range(100, 400) if p.ctx(c) > floor][:2]
        assert p.identity([b1, a, a], t) == p.identity([b2, a, a], t)
        assert p.value([b1, a, a], t) == p.value([b2, a, a], t)
        assert p.identity([a, a, b1], t) != p.identity([a, a, b2], t)
    with pytest.raises(ValueError, match="exactly h"):
        p.identity([1] * (h + 1), 2)


def test_prf_validation() -> None:
    with pytest.raises(ValueError, match="selfhash"):
        Prf(KEY, h=0, mode="selfhash")
    with pytest.raises(ValueError, match="outside"):
        Prf(KEY, h=17)
    with pytest.raises(ValueError, match="minhash"):
        Prf(KEY, h=1, mode="minhash")
    p = Prf(KEY, h=2)
    with pytest.raises(ValueError, match="exactly h = 2"):
        p.uniforms([1], 10)
    with pytest.raises(ValueError, match="2\\*\\*32"):
        p.value([1, 2**32], 3)
    with pytest.raises(ValueError, match="non-negative"):
        p.values([1, 2], [-1])
    with pytest.raises(ValueError, match="ordered mode"):
        Prf(KEY, h=1, mode="selfhash").seed([1])
    assert "k0" not in repr(p) and KEY.hex() not in repr(p)
