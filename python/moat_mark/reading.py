"""Open-setting radioactivity input: a suspect model's top-1 predictions on our served texts.

In the open setting (Sander et al. 2024, "reading mode") we hold the suspect's weights. We feed
it the texts we served to a campaign and record, at every position, the token it finds most
likely next. ``moat mark radioactivity --setting open`` scores those predictions under the
campaign's key. This module writes the JSONL lines that command reads:
``{"tokens": [ids], "predicted": [ids]}``, where ``predicted[i]`` is the model's most likely
token after ``tokens[:i]``. ``predicted[0]`` has no left context: it repeats ``tokens[0]``, and
with ``h >= 1`` the detector never scores position 0 (with ``h = 0`` it would, so use h >= 1).

The token ids must be the watermark's ids: the suspect has to share the tokenizer the watermark
was applied with (the usual case for distillation into a model of the same family; otherwise
re-tokenize and score the closed setting instead).
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterable, Iterator, List, Sequence

__all__ = ["predictions", "write_predictions"]


def predictions(model: Any, texts: Iterable[Sequence[int]], max_len: int = 1024) -> Iterator[Dict[str, List[int]]]:
    """Top-1 predictions of a Hugging Face causal LM (``model(input_ids).logits``) on each
    token-id sequence, in windows of at most ``max_len`` tokens. Needs torch."""
    import torch

    if max_len < 2:
        raise ValueError(f"max_len = {max_len} must be at least 2")
    device = next(model.parameters()).device
    for j, text in enumerate(texts):
        tokens = [int(t) for t in text]
        if not tokens:
            raise ValueError(f"texts[{j}] is empty")
        predicted = [tokens[0]]
        start = 0
        while start < len(tokens) - 1:
            chunk = tokens[start : start + max_len]
            with torch.no_grad():
                logits = model(torch.tensor([chunk], device=device)).logits[0]
            best = logits.argmax(dim=-1).tolist()
            # best[k] predicts chunk[k + 1], i.e. position start + k + 1.
            predicted.extend(int(b) for b in best[: len(chunk) - 1])
            start += len(chunk) - 1
        yield {"tokens": tokens, "predicted": predicted[: len(tokens)]}


def write_predictions(path: str, lines: Iterable[Dict[str, List[int]]]) -> int:
    """Writes prediction lines as JSONL for ``moat mark radioactivity --setting open``; returns
    the number of lines."""
    n = 0
    with open(path, "w", encoding="utf-8") as out:
        for line in lines:
            if len(line["tokens"]) != len(line["predicted"]):
                raise ValueError(f"line {n + 1}: {len(line['predicted'])} predictions for {len(line['tokens'])} tokens")
            out.write(json.dumps(line, separators=(",", ":")) + "\n")
            n += 1
    return n
