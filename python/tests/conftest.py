"""Shared test setup: ``reference.py`` (the independent transcription) is importable."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
