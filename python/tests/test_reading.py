"""Open-setting prediction files (the parts that need no torch)."""

from __future__ import annotations

import json

import pytest

from moat_mark.reading import write_predictions


def test_write_predictions_round_trips_and_checks_lengths(tmp_path) -> None:
    path = tmp_path / "p.jsonl"
    lines = [{"tokens": [1, 2, 3], "predicted": [1, 2, 4]}]
    assert write_predictions(str(path), lines) == 1
    assert [json.loads(x) for x in path.read_text().splitlines()] == lines
    with pytest.raises(ValueError, match="line 1: 1 predictions for 3 tokens"):
        write_predictions(str(path), [{"tokens": [1, 2, 3], "predicted": [1]}])
