"""moat_mark: the Python reference of Moat's text watermark (scheme ``moat-mark/v1``).

Inference engines use it to apply exactly the scheme that the Rust detector
(``moat mark detect``) tests for: see ``crates/mark/SCHEME.md`` for the normative definition
and ``python/README.md`` for usage. Importing this package needs numpy only; the engine
adapters import torch / transformers lazily.
"""

from __future__ import annotations

from typing import Any

from .detect import (
    GumbelResult,
    KgwResult,
    NothingToScoreError,
    Selection,
    binomial_log_sf,
    detect_gumbel,
    detect_kgw,
    gamma_log_sf,
    scored_tuples,
    select_tuples,
)
from .keyring import HEADER, KeyEntry, Keyring, KeyringError, UnknownKeyError, load_keyring
from .processors import GumbelProcessor, KgwProcessor, VllmLogitsProcessor
from .scheme import (
    MODES,
    SCHEME,
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

__version__ = "0.1.0"

__all__ = [
    "SCHEME",
    "MODES",
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
    "Prf",
    "KgwProcessor",
    "GumbelProcessor",
    "HfKgwLogitsProcessor",
    "HfGumbelLogitsProcessor",
    "VllmLogitsProcessor",
    "KgwResult",
    "GumbelResult",
    "NothingToScoreError",
    "Selection",
    "scored_tuples",
    "select_tuples",
    "detect_kgw",
    "detect_gumbel",
    "binomial_log_sf",
    "gamma_log_sf",
    "HEADER",
    "KeyEntry",
    "Keyring",
    "KeyringError",
    "UnknownKeyError",
    "load_keyring",
]


def __getattr__(name: str) -> Any:
    """Lazy access to the Hugging Face adapters (their base class comes from transformers)."""
    if name in ("HfKgwLogitsProcessor", "HfGumbelLogitsProcessor"):
        from . import processors

        return getattr(processors, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
