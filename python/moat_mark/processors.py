"""Sampling-time watermark processors: a numpy core and adapters for inference engines.

The cores (:class:`KgwProcessor`, :class:`GumbelProcessor`) take the token ids that precede the
position being sampled (prompt included, oldest first) and one row of logits, and return the
row the engine should sample from:

* KGW adds ``delta`` to the logit of every green token (``u < gamma``);
* Gumbel-max returns a row that is ``-inf`` everywhere except at the chosen token
  ``argmax_t(logit_t / T - ln(-ln u_t))``, so any sampler (greedy, temperature, top-k, top-p)
  then picks exactly that token.

Positions with fewer than ``h`` preceding tokens are not watermarked: the row comes back
unchanged.

Adapters, for torch tensors (torch, transformers and vLLM are imported lazily; importing
``moat_mark`` needs numpy only):

* :class:`HfKgwLogitsProcessor`, :class:`HfGumbelLogitsProcessor`: Hugging Face
  ``transformers`` logits processors (subclasses of ``transformers.LogitsProcessor`` when
  transformers is importable) for ``model.generate(logits_processor=...)``;
* :class:`VllmLogitsProcessor`: a vLLM per-request logits processor callable
  (``SamplingParams(logits_processors=[...])`` on the V0 engine, or wrapped by V1's
  ``AdapterLogitsProcessor``).

**This is a reference implementation: correctness over speed.** The adapters copy each row to
the CPU, compute in float64 numpy and copy the result back, once per row per step. A
production port should keep everything on the accelerator: precompute ``tok(t)`` (and
``ctx(t)``) for the vocabulary once per key as a ``uint64``/``int64`` device tensor, compute the
few seed mixes of each row's window on the host (or in a small kernel), evaluate
``mix(seed ^ tok)`` for the whole batch as one fused elementwise kernel (wrapping 64-bit
multiplies; torch lacks unsigned 64-bit multiply on most backends, so use int64 with the same
bit patterns or a Triton/CUDA kernel), and apply the bias or the Gumbel argmax batched. It
must reproduce this module bit for bit: check it against ``python/tests/vectors.json``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Union

import numpy as np

from .scheme import Prf, check_mode

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "KgwProcessor",
    "GumbelProcessor",
    "HfKgwLogitsProcessor",
    "HfGumbelLogitsProcessor",
    "VllmLogitsProcessor",
]


def _window_of(input_ids: Sequence[int], h: int) -> Optional[List[int]]:
    """The last ``h`` ids (oldest first), or ``None`` when fewer than ``h`` precede."""
    n = len(input_ids)
    if n < h:
        return None
    if h == 0:
        return []
    return [int(t) for t in input_ids[n - h :]]


def _as_row(logits: np.ndarray) -> np.ndarray:
    row = np.asarray(logits)
    if row.ndim != 1:
        raise ValueError(f"logits must be one row (1-d), got shape {row.shape}")
    if row.dtype.kind != "f":
        row = row.astype(np.float64)
    return row


class KgwProcessor:
    """KGW soft watermark (Kirchenbauer et al. 2023) on one row of logits.

    Args:
        key: the 32-byte watermark key (a derived key, see :func:`moat_mark.derive_key`).
        gamma: fraction of the vocabulary that is green, in (0, 1).
        delta: bias added to green logits, >= 0.
        h: number of previous tokens that seed a position (0..16).
        mode: ``"ordered"`` or ``"selfhash"``.
    """

    def __init__(self, key: bytes, gamma: float, delta: float, h: int = 1, mode: str = "ordered"):
        check_mode(mode, h)
        gamma = float(gamma)
        delta = float(delta)
        if not 0.0 < gamma < 1.0:
            raise ValueError(f"gamma = {gamma} is outside (0, 1)")
        if not (math.isfinite(delta) and delta >= 0.0):
            raise ValueError(f"delta = {delta} must be finite and >= 0")
        self.gamma = gamma
        self.delta = delta
        self.h = int(h)
        self.mode = mode
        self.prf = Prf(key, h=self.h, mode=mode)

    def __repr__(self) -> str:
        return (
            f"KgwProcessor(gamma={self.gamma}, delta={self.delta}, h={self.h}, mode={self.mode!r})"
        )

    def green_mask(self, input_ids: Sequence[int], vocab_size: int) -> Optional[np.ndarray]:
        """Boolean mask of the green tokens ``0..vocab_size`` at the next position, or ``None``
        when fewer than ``h`` tokens precede it."""
        window = _window_of(input_ids, self.h)
        if window is None:
            return None
        return self.prf.uniforms(window, vocab_size) < self.gamma

    def apply(self, input_ids: Sequence[int], logits: np.ndarray) -> np.ndarray:
        """Logits with ``delta`` added to every green token (a new array of the input's float
        dtype); the input itself when fewer than ``h`` tokens precede the position."""
        row = _as_row(logits)
        green = self.green_mask(input_ids, row.shape[0])
        if green is None:
            return row
        out = row.copy()
        out[green] += out.dtype.type(self.delta)
        return out


class GumbelProcessor:
    """Gumbel-max watermark (Aaronson 2022) on one row of logits.

    Args:
        key: the 32-byte watermark key.
        h: number of previous tokens that seed a position (0..16).
        mode: ``"ordered"`` or ``"selfhash"``.
        temperature: ``T > 0``; the draw is ``argmax_t(logit_t / T - ln(-ln u_t))``, exact
            sampling from ``softmax(logits / T)`` for any one position. Use this instead of the
            engine's temperature: the engine's sampler only ever sees one finite logit.
    """

    def __init__(self, key: bytes, h: int = 1, mode: str = "ordered", temperature: float = 1.0):
        check_mode(mode, h)
        temperature = float(temperature)
        if not (math.isfinite(temperature) and temperature > 0.0):
            raise ValueError(f"temperature = {temperature} must be finite and > 0")
        self.h = int(h)
        self.mode = mode
        self.temperature = temperature
        self.prf = Prf(key, h=self.h, mode=mode)

    def __repr__(self) -> str:
        return f"GumbelProcessor(h={self.h}, mode={self.mode!r}, temperature={self.temperature})"

    def choose(self, input_ids: Sequence[int], logits: np.ndarray) -> Optional[int]:
        """The watermarked token at the next position, or ``None`` when fewer than ``h`` tokens
        precede it (or when every logit is ``-inf``/NaN: nothing can be chosen).

        Computed in float64 (float32 logits widen exactly): ``logits / T - ln(-ln u)``;
        ``-inf`` and NaN logits are never chosen; ties go to the lowest id.
        """
        row = _as_row(logits)
        window = _window_of(input_ids, self.h)
        if window is None:
            return None
        u = self.prf.uniforms(window, row.shape[0])
        keys = row.astype(np.float64) / self.temperature - np.log(-np.log(u))
        keys[np.isnan(keys)] = -np.inf  # NaN logits
        best = int(np.argmax(keys))  # the first maximum: ties go to the lowest id
        if keys[best] == -np.inf:
            return None
        return best

    def apply(self, input_ids: Sequence[int], logits: np.ndarray) -> np.ndarray:
        """A row that is ``-inf`` everywhere except at the chosen token, which keeps its logit;
        the input itself when no token is chosen (see :meth:`choose`)."""
        row = _as_row(logits)
        token = self.choose(input_ids, row)
        if token is None:
            return row
        out = np.full_like(row, -np.inf)
        out[token] = row[token]
        return out


Processor = Union[KgwProcessor, GumbelProcessor]


# ----------------------------------------------------------------------------------------------
# torch adapters
# ----------------------------------------------------------------------------------------------


def _torch() -> Any:
    try:
        import torch
    except ImportError as e:  # pragma: no cover - exercised only without torch
        raise ImportError("the moat_mark engine adapters need torch (pip install torch)") from e
    return torch


def _apply_to_tensor_row(
    core: Processor, context: Sequence[int], row: "torch.Tensor"
) -> "torch.Tensor":
    """Runs the numpy core on one torch row: to CPU float (float32, or float64 if the row is
    float64; half and bfloat16 widen exactly), then back to the row's device and dtype."""
    torch = _torch()
    wide = row.detach()
    if wide.dtype != torch.float64:
        wide = wide.to(torch.float32)
    out = core.apply(context, wide.cpu().numpy())
    return torch.from_numpy(np.ascontiguousarray(out)).to(device=row.device, dtype=row.dtype)


def _apply_to_batch(
    core: Processor, input_ids: "torch.LongTensor", scores: "torch.FloatTensor"
) -> "torch.FloatTensor":
    if scores.dim() != 2 or input_ids.dim() != 2 or input_ids.shape[0] != scores.shape[0]:
        raise ValueError(
            f"expected input_ids [batch, seq] and scores [batch, vocab], got "
            f"{tuple(input_ids.shape)} and {tuple(scores.shape)}"
        )
    rows = input_ids.tolist()
    out = scores.clone()
    for b, context in enumerate(rows):
        out[b] = _apply_to_tensor_row(core, context, scores[b])
    return out


class _HfAdapter:
    """Shared body of the Hugging Face adapters: ``__call__(input_ids, scores)``.

    ``input_ids`` is ``[batch, seq]`` (prompt and generated tokens), ``scores`` is
    ``[batch, vocab]``; each row is processed with its own context and the result is a new
    tensor on the scores' device, in their dtype. In a left-padded batch, pad tokens enter a
    window only while a row holds fewer than ``h`` real tokens, so only the first positions
    of a very short prompt are affected.
    """

    core: Processor

    def __call__(
        self, input_ids: "torch.LongTensor", scores: "torch.FloatTensor"
    ) -> "torch.FloatTensor":
        return _apply_to_batch(self.core, input_ids, scores)


class _HfKgwBody(_HfAdapter):
    """KGW as a Hugging Face logits processor (see :class:`KgwProcessor` for the arguments)."""

    def __init__(self, key: bytes, gamma: float, delta: float, h: int = 1, mode: str = "ordered"):
        self.core = KgwProcessor(key, gamma=gamma, delta=delta, h=h, mode=mode)

    def __repr__(self) -> str:
        return f"HfKgwLogitsProcessor({self.core!r})"


class _HfGumbelBody(_HfAdapter):
    """Gumbel-max as a Hugging Face logits processor (see :class:`GumbelProcessor`).

    Put it last in the processor list; whatever the sampler does next (greedy or sampling,
    top-k, top-p, the generation temperature), it can only pick the watermarked token.
    """

    def __init__(self, key: bytes, h: int = 1, mode: str = "ordered", temperature: float = 1.0):
        self.core = GumbelProcessor(key, h=h, mode=mode, temperature=temperature)

    def __repr__(self) -> str:
        return f"HfGumbelLogitsProcessor({self.core!r})"


_HF_BODIES: Dict[str, type] = {
    "HfKgwLogitsProcessor": _HfKgwBody,
    "HfGumbelLogitsProcessor": _HfGumbelBody,
}
_HF_CLASSES: Dict[str, type] = {}


def _hf_base() -> type:
    try:
        from transformers import LogitsProcessor
    except ImportError:
        return object
    return LogitsProcessor


def _hf_class(name: str) -> type:
    """Builds the adapter class on first use, so that importing this module does not import
    transformers (and torch)."""
    cls = _HF_CLASSES.get(name)
    if cls is None:
        body = _HF_BODIES[name]
        base = _hf_base()
        bases = (body,) if base is object else (body, base)
        cls = type(name, bases, {"__doc__": body.__doc__, "__module__": __name__})
        _HF_CLASSES[name] = cls
    return cls


def __getattr__(name: str) -> Any:  # PEP 562: lazy HfKgwLogitsProcessor / HfGumbelLogitsProcessor
    if name in _HF_BODIES:
        return _hf_class(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if TYPE_CHECKING:  # pragma: no cover - what type checkers see
    HfKgwLogitsProcessor = _HfKgwBody
    HfGumbelLogitsProcessor = _HfGumbelBody


class VllmLogitsProcessor:
    """A vLLM per-request logits processor around a :class:`KgwProcessor` or
    :class:`GumbelProcessor`.

    Callable as ``(prompt_token_ids, output_token_ids, logits)`` or as
    ``(output_token_ids, logits)``; ``logits`` is the request's 1-d row. The context is prompt
    then output ids. Its signature has three parameters, so vLLM (V0's sampler and V1's
    ``AdapterLogitsProcessor`` both inspect the parameter count) passes the prompt; for the
    two-argument form the prompt given to the constructor, if any, is used.

    Create one instance per request (it holds no per-step state, but the prompt given to the
    constructor belongs to one request).
    """

    def __init__(self, core: Processor, prompt_token_ids: Optional[Sequence[int]] = None):
        if not isinstance(core, (KgwProcessor, GumbelProcessor)):
            raise TypeError(
                f"core must be a KgwProcessor or GumbelProcessor, got {type(core).__name__}"
            )
        self.core = core
        self.prompt_token_ids: Sequence[int] = (
            list(prompt_token_ids) if prompt_token_ids is not None else []
        )

    @classmethod
    def kgw(
        cls, key: bytes, gamma: float, delta: float, h: int = 1, mode: str = "ordered"
    ) -> "VllmLogitsProcessor":
        """A KGW processor (see :class:`KgwProcessor`)."""
        return cls(KgwProcessor(key, gamma=gamma, delta=delta, h=h, mode=mode))

    @classmethod
    def gumbel(
        cls, key: bytes, h: int = 1, mode: str = "ordered", temperature: float = 1.0
    ) -> "VllmLogitsProcessor":
        """A Gumbel-max processor (see :class:`GumbelProcessor`)."""
        return cls(GumbelProcessor(key, h=h, mode=mode, temperature=temperature))

    def __repr__(self) -> str:
        return f"VllmLogitsProcessor({self.core!r})"

    def context(
        self, prompt_token_ids: Sequence[int], output_token_ids: Sequence[int]
    ) -> List[int]:
        """The last ``h`` tokens of prompt + output (fewer if fewer exist), oldest first."""
        h = self.core.h
        if h == 0:
            return []
        out_n = len(output_token_ids)
        if out_n >= h:
            return list(output_token_ids[out_n - h :])
        need = h - out_n
        prompt_n = len(prompt_token_ids)
        return list(prompt_token_ids[max(0, prompt_n - need) :]) + list(output_token_ids)

    def __call__(
        self, prompt_token_ids: Any, output_token_ids: Any, logits: Any = None
    ) -> "torch.Tensor":
        if logits is None:  # the two-argument form: (output_token_ids, logits)
            prompt_token_ids, output_token_ids, logits = (
                self.prompt_token_ids,
                prompt_token_ids,
                output_token_ids,
            )
        if logits.dim() != 1:
            raise ValueError(
                f"a vLLM per-request processor gets one row, got shape {tuple(logits.shape)}"
            )
        ctx = self.context(prompt_token_ids, output_token_ids)
        if len(ctx) < self.core.h:
            return logits
        return _apply_to_tensor_row(self.core, ctx, logits)
