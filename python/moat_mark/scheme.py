"""The moat-mark/v1 scheme: keys and the keyed pseudo-random function.

This module is a direct transcription of ``crates/mark/SCHEME.md`` (the normative definition)
in pure Python integers and numpy. Everything here is deterministic and bit-exact with the
Rust crate ``moat-mark``: u64 arithmetic wraps modulo 2**64 and uniforms are IEEE-754 doubles
computed exactly.

Two flavours of every primitive are provided:

* scalar functions over Python ``int`` masked to 64 bits (:func:`mix`, :func:`uniform`,
  :meth:`Prf.value`): the plainest reading of the spec, used as a cross-check;
* vectorised functions over ``np.uint64`` arrays (:func:`mix_array`, :func:`uniform_array`,
  :meth:`Prf.values`, :meth:`Prf.uniforms`, :meth:`Prf.tuple_values`) for sampling and
  detection. numpy array multiplication wraps silently, which is exactly u64 wrapping
  arithmetic; scalar numpy integers are never used, so no overflow warnings are raised.

Uniforms are exact: ``u = ((v >> 12) + 0.5) * 2**-52`` needs at most 53 significant bits.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Sequence, Tuple

import numpy as np
import numpy.typing as npt

__all__ = [
    "SCHEME",
    "MODES",
    "MAX_WINDOW",
    "MAX_TOKEN_ID",
    "G",
    "mix",
    "mix_array",
    "uniform",
    "uniform_array",
    "hkdf_sha256",
    "derive_key",
    "key_id",
    "prf_words",
    "parse_key_hex",
    "parse_key_id",
    "check_mode",
    "Prf",
]

#: Name and version of the scheme (the ``scheme`` field of the test vectors).
SCHEME = "moat-mark/v1"
#: The two ways a window of previous tokens seeds a position.
MODES = ("ordered", "selfhash")
#: The widest window ``h`` accepted (the Rust crate's ``Context::MAX_WIDTH``).
MAX_WINDOW = 16
#: Token ids are non-negative integers below 2**32.
MAX_TOKEN_ID = (1 << 32) - 1

MASK64 = (1 << 64) - 1
#: The golden-ratio increment of SplitMix64.
G = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB

_DERIVE_SALT = b"moat-mark/v1"
_KEY_ID_PREFIX = b"moat-mark/key-id/v1"
_PRF_PREFIX = b"moat-mark/prf/v1"
_KEY_LEN = 32

# numpy constants: every operand of an array operation is uint64, so numpy never promotes to
# float64 or int64 (NumPy 1.x promotes uint64 with a Python int to float64).
_U_G = np.uint64(G)
_U_M1 = np.uint64(_M1)
_U_M2 = np.uint64(_M2)
_U_30 = np.uint64(30)
_U_27 = np.uint64(27)
_U_31 = np.uint64(31)
_U_12 = np.uint64(12)
#: 2**-52, exact as a double.
_TWO_M52 = 2.0**-52


# ----------------------------------------------------------------------------------------------
# mix and uniforms
# ----------------------------------------------------------------------------------------------


def mix(x: int) -> int:
    """The SplitMix64 finaliser on one u64 given as a Python int (taken modulo 2**64)."""
    x &= MASK64
    x = ((x ^ (x >> 30)) * _M1) & MASK64
    x = ((x ^ (x >> 27)) * _M2) & MASK64
    return x ^ (x >> 31)


def mix_array(x: npt.ArrayLike) -> np.ndarray:
    """The SplitMix64 finaliser, element-wise over an array of u64 (wrapping multiplies).

    The result has the input's shape and dtype ``np.uint64``. Zero-dimensional input is
    processed as a one-element array (numpy scalar arithmetic would warn on overflow).
    """
    arr = np.asarray(x, dtype=np.uint64)
    flat = np.array(arr.reshape(-1), dtype=np.uint64, copy=True)
    flat ^= flat >> _U_30
    flat *= _U_M1
    flat ^= flat >> _U_27
    flat *= _U_M2
    flat ^= flat >> _U_31
    return flat.reshape(arr.shape)


def uniform(v: int) -> float:
    """The double a PRF value stands for: ``u = ((v >> 12) + 0.5) * 2**-52``.

    ``m = v >> 12`` is below 2**52, so ``m``, ``m + 0.5`` (at most 53 significant bits) and the
    scaling by a power of two are all exact: ``u = (2m + 1) / 2**53`` exactly, strictly inside
    (0, 1), from ``2**-53`` to ``1 - 2**-53``.
    """
    return (float((v & MASK64) >> 12) + 0.5) * _TWO_M52


def uniform_array(v: npt.ArrayLike) -> np.ndarray:
    """:func:`uniform` element-wise over an array of u64, as float64 (bit-identical)."""
    m = np.asarray(v, dtype=np.uint64) >> _U_12
    # Every m is below 2**52: the uint64 -> float64 conversion and both operations are exact.
    u = m.astype(np.float64)
    u += 0.5
    u *= _TWO_M52
    return u


# ----------------------------------------------------------------------------------------------
# keys
# ----------------------------------------------------------------------------------------------


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """HKDF-SHA256 (RFC 5869): extract with ``salt``, then expand ``info`` to ``length`` bytes."""
    if not 0 <= length <= 255 * 32:
        raise ValueError(f"HKDF-SHA256 output length must be in [0, 8160], got {length}")
    prk = hmac.new(salt if salt else bytes(32), ikm, hashlib.sha256).digest()
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def _check_key(key: bytes, what: str = "key") -> bytes:
    if not isinstance(key, (bytes, bytearray, memoryview)):
        raise TypeError(f"{what} must be bytes, got {type(key).__name__}")
    key = bytes(key)
    if len(key) != _KEY_LEN:
        raise ValueError(f"{what} must be {_KEY_LEN} bytes, got {len(key)}")
    return key


def derive_key(master: bytes, scope: str) -> bytes:
    """The key of ``scope`` (``campaign:c-42``, ``cohort:eu-free``, ...) under a master secret.

    HKDF-SHA256 with ``IKM = master``, ``salt = "moat-mark/v1"``, ``info = scope`` (UTF-8),
    32 bytes of output.
    """
    master = _check_key(master, "master secret")
    return hkdf_sha256(master, _DERIVE_SALT, scope.encode("utf-8"), _KEY_LEN)


def key_id(key: bytes) -> str:
    """The public id of a key: first 8 bytes of ``SHA-256("moat-mark/key-id/v1" || key)``, hex."""
    key = _check_key(key)
    return hashlib.sha256(_KEY_ID_PREFIX + key).digest()[:8].hex()


def prf_words(key: bytes) -> Tuple[int, int]:
    """The PRF words ``(k0, k1)``: little-endian u64s of ``SHA-256("moat-mark/prf/v1" || key)``."""
    key = _check_key(key)
    digest = hashlib.sha256(_PRF_PREFIX + key).digest()
    return int.from_bytes(digest[0:8], "little"), int.from_bytes(digest[8:16], "little")


_HEX = frozenset("0123456789abcdefABCDEF")


def parse_key_hex(text: str) -> bytes:
    """Parses a key or master secret: 64 hex characters, surrounding whitespace ignored.

    Upper-case digits are accepted, as by the Rust crate. Raises ``ValueError``.
    """
    text = text.strip()
    if len(text) != 2 * _KEY_LEN:
        raise ValueError(f"expected {2 * _KEY_LEN} hex characters, found {len(text)}")
    bad = next((i for i, c in enumerate(text) if c not in _HEX), None)
    if bad is not None:
        raise ValueError(f"non-hex character at position {bad}")
    return bytes.fromhex(text)


def parse_key_id(text: str) -> str:
    """Parses a key id (16 hex characters, whitespace ignored) into its lowercase form."""
    text = text.strip()
    if len(text) != 16 or any(c not in _HEX for c in text):
        raise ValueError(f"a key id has 16 hex characters, got {text!r}")
    return text.lower()


# ----------------------------------------------------------------------------------------------
# the PRF
# ----------------------------------------------------------------------------------------------


def check_mode(mode: str, h: int) -> None:
    """Validates a context rule: ``mode`` in :data:`MODES`, ``0 <= h <= MAX_WINDOW``, and
    ``h >= 1`` for ``selfhash``. Raises ``ValueError``."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not ordered or selfhash")
    if isinstance(h, bool) or not isinstance(h, (int, np.integer)):
        raise TypeError(f"h must be an int, got {type(h).__name__}")
    if not 0 <= h <= MAX_WINDOW:
        raise ValueError(f"h = {h} is outside [0, {MAX_WINDOW}]")
    if mode == "selfhash" and h == 0:
        raise ValueError("selfhash needs at least one previous token (h >= 1)")


def _token_ids(ids: npt.ArrayLike, what: str) -> np.ndarray:
    """Token ids as a uint64 array, checked to lie in [0, 2**32)."""
    arr = np.asarray(ids)
    if arr.size == 0:
        return np.zeros(arr.shape, dtype=np.uint64)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{what} must be integers, got dtype {arr.dtype}")
    if arr.dtype.kind == "i" and int(arr.min()) < 0:
        raise ValueError(f"{what} must be non-negative, got {int(arr.min())}")
    if int(arr.max()) > MAX_TOKEN_ID:
        raise ValueError(f"{what} must be below 2**32, got {int(arr.max())}")
    return arr.astype(np.uint64)


def _token_id(t: int, what: str = "token id") -> int:
    t = int(t)
    if not 0 <= t <= MAX_TOKEN_ID:
        raise ValueError(f"{what} {t} is outside [0, 2**32)")
    return t


class Prf:
    """The keyed PRF of one key under one context rule (``h`` previous tokens, ``mode``).

    Per-token hashes ``tok(t)`` (and, for ``selfhash``, ``ctx(t)`` of the candidates) are
    tabulated over ``0..vocab_size`` on first use and the tables grow when a larger vocabulary
    is asked for. A token's hashes do not depend on the vocabulary size, so logits rows of
    different widths (padded embedding matrices) see the same values for the same ids.
    """

    def __init__(self, key: bytes, h: int = 1, mode: str = "ordered", vocab_size: int = 0):
        check_mode(mode, h)
        self.h: int = int(h)
        self.mode: str = mode
        self.k0, self.k1 = prf_words(key)
        self._tok_table = np.zeros(0, dtype=np.uint64)
        self._ctx_table = np.zeros(0, dtype=np.uint64)
        if vocab_size:
            self._ensure_tables(vocab_size)

    def __repr__(self) -> str:  # never shows key material
        return f"Prf(h={self.h}, mode={self.mode!r})"

    # -- per-token hashes ---------------------------------------------------------------------

    def tok(self, t: int) -> int:
        """``tok(t) = mix(k1 ^ (t + G))``: a token's own hash."""
        return mix(self.k1 ^ ((_token_id(t) + G) & MASK64))

    def ctx(self, c: int) -> int:
        """``ctx(c) = mix(k0 ^ (c * G))``: a context token's contribution."""
        return mix(self.k0 ^ ((_token_id(c) * G) & MASK64))

    def tok_array(self, tokens: npt.ArrayLike) -> np.ndarray:
        """:meth:`tok` element-wise (token ids in, uint64 out)."""
        t = _token_ids(tokens, "token ids")
        flat = t.reshape(-1) + _U_G  # 1-d, so the wrapping add raises no scalar warning
        return mix_array(flat ^ np.uint64(self.k1)).reshape(t.shape)

    def ctx_array(self, tokens: npt.ArrayLike) -> np.ndarray:
        """:meth:`ctx` element-wise (token ids in, uint64 out)."""
        c = _token_ids(tokens, "token ids")
        flat = c.reshape(-1) * _U_G  # 1-d, so the wrapping multiply raises no scalar warning
        return mix_array(flat ^ np.uint64(self.k0)).reshape(c.shape)

    def _ensure_tables(self, vocab_size: int) -> None:
        vocab_size = int(vocab_size)
        if vocab_size < 0 or vocab_size > MAX_TOKEN_ID + 1:
            raise ValueError(f"vocab_size {vocab_size} is outside [0, 2**32]")
        if len(self._tok_table) >= vocab_size:
            return
        ids = np.arange(vocab_size, dtype=np.uint64)
        self._tok_table = self.tok_array(ids)
        if self.mode == "selfhash":
            self._ctx_table = self.ctx_array(ids)

    def tok_table(self, vocab_size: int) -> np.ndarray:
        """``tok(t)`` for ``t`` in ``0..vocab_size`` (a read-only view of the cached table)."""
        self._ensure_tables(vocab_size)
        view = self._tok_table[:vocab_size]
        view.flags.writeable = False
        return view

    # -- seeds and values ---------------------------------------------------------------------

    def _window(self, window: Sequence[int]) -> list:
        ids = [_token_id(c, "window token id") for c in window]
        if len(ids) != self.h:
            raise ValueError(f"the window must hold exactly h = {self.h} tokens, got {len(ids)}")
        return ids

    def seed(self, window: Sequence[int]) -> int:
        """The seed of a position in ``ordered`` mode: ``s = k0; s = mix(s ^ ctx(c))`` for each
        window token, oldest first. (In ``selfhash`` mode the seed depends on the candidate:
        see :meth:`selfhash_parts`.)"""
        if self.mode != "ordered":
            raise ValueError("seed() is for ordered mode; selfhash seeds depend on the candidate")
        s = self.k0
        for c in self._window(window):
            s = mix(s ^ self.ctx(c))
        return s

    def selfhash_parts(self, window: Sequence[int]) -> Tuple[int, int]:
        """``(a, m_window)`` for ``selfhash``: the keyed anchor ``a = mix(ctx(x[i-1]) ^ k1)`` and
        the minimum of ``ctx`` over the window. The seed of candidate ``t`` is
        ``s(t) = mix(a ^ min(m_window, ctx(t)))``.

        (The extra keyed mix of the anchor keeps ``a ^ m`` from cancelling to 0 when the anchor
        token holds the minimum itself.)"""
        if self.mode != "selfhash":
            raise ValueError("selfhash_parts() is for selfhash mode")
        ctxs = [self.ctx(c) for c in self._window(window)]
        return mix(ctxs[-1] ^ self.k1), min(ctxs)

    def identity(self, window: Sequence[int], token: int) -> Tuple[int, ...]:
        """What the value of ``token`` after ``window`` is a function of, besides the key
        (SCHEME.md, "identity"): ``(*window, token)`` in ``ordered`` mode; ``(x[i-1], m, token)``
        in ``selfhash`` mode, with ``m = min(ctx(c) for c in window + [token])``. Tuples with
        the same identity have the same value, so a test counts each identity once."""
        ids = self._window(window)
        t = _token_id(token)
        if self.mode == "ordered":
            return (*ids, t)
        m = min(self.ctx(c) for c in ids + [t])
        return (ids[-1], m, t)

    def value(self, window: Sequence[int], token: int) -> int:
        """The PRF value ``v = mix(s ^ tok(t))`` of candidate ``token`` after ``window``
        (scalar, pure Python ints: the reference path)."""
        if self.mode == "ordered":
            s = self.seed(window)
        else:
            anchor, m = self.selfhash_parts(window)
            s = mix(anchor ^ min(m, self.ctx(token)))
        return mix(s ^ self.tok(token))

    def values(self, window: Sequence[int], tokens: npt.ArrayLike) -> np.ndarray:
        """PRF values of the candidates ``tokens`` after one ``window`` (uint64 array)."""
        t = _token_ids(tokens, "candidate token ids")
        tok = self.tok_array(t)
        if self.mode == "ordered":
            s = np.uint64(self.seed(window))
            return mix_array(tok ^ s)
        anchor, m = self.selfhash_parts(window)
        mins = np.minimum(self.ctx_array(t), np.uint64(m))
        return mix_array(mix_array(mins ^ np.uint64(anchor)) ^ tok)

    def all_values(self, window: Sequence[int], vocab_size: int) -> np.ndarray:
        """PRF values of every candidate ``0..vocab_size`` after ``window`` (uint64 array)."""
        tok = self.tok_table(vocab_size)
        if self.mode == "ordered":
            return mix_array(tok ^ np.uint64(self.seed(window)))
        anchor, m = self.selfhash_parts(window)
        mins = np.minimum(self._ctx_table[:vocab_size], np.uint64(m))
        return mix_array(mix_array(mins ^ np.uint64(anchor)) ^ tok)

    def uniforms(self, window: Sequence[int], vocab_size: int) -> np.ndarray:
        """Uniforms (float64, strictly inside (0, 1); see :func:`uniform`) of every candidate
        ``0..vocab_size`` after ``window``, which holds exactly ``h`` tokens, oldest first."""
        return uniform_array(self.all_values(window, vocab_size))

    def tuple_values(self, windows: npt.ArrayLike, tokens: npt.ArrayLike) -> np.ndarray:
        """PRF values of many (window, token) tuples at once, for detection.

        ``windows`` has shape ``(n, h)`` (oldest first in each row), ``tokens`` shape ``(n,)``.
        """
        t = _token_ids(tokens, "token ids").reshape(-1)
        n = t.shape[0]
        w = _token_ids(windows, "window token ids").reshape(n, self.h)
        tok = self.tok_array(t)
        if self.mode == "ordered":
            s = np.full(n, self.k0, dtype=np.uint64)
            for j in range(self.h):
                s = mix_array(s ^ self.ctx_array(w[:, j]))
            return mix_array(s ^ tok)
        c = self.ctx_array(w)
        mins = np.minimum(c.min(axis=1), self.ctx_array(t))
        anchors = mix_array(c[:, -1] ^ np.uint64(self.k1))
        return mix_array(mix_array(anchors ^ mins) ^ tok)
