"""Plain-Python parsing of manifest cells shared by inputs and targets (no TensorFlow)."""

from __future__ import annotations

import math
import re
from typing import List

_NUMBER_SEP = re.compile(r"[\s;,]+")


def parse_numbers(value, what: str) -> List[float]:
    """A JSON list of numbers, a number, or a string of floats separated by spaces / ; / ,."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be numbers, got a boolean")
    if isinstance(value, (int, float)):
        items = [value]
    elif isinstance(value, list):
        items = value
    elif isinstance(value, str):
        items = [p for p in _NUMBER_SEP.split(value.strip()) if p]
    elif value is None:
        items = []
    else:
        raise ValueError(f"{what} must be numbers, got {type(value).__name__}")
    if not items:
        raise ValueError(f"{what} is empty")
    out = []
    for item in items:
        if isinstance(item, bool):
            raise ValueError(f"{what} must be numbers, got a boolean")
        try:
            x = float(item)
        except (TypeError, ValueError):
            raise ValueError(f"{what} has a value that is not a number: {item!r}") from None
        if not math.isfinite(x):
            raise ValueError(f"{what} has a non-finite value: {item!r}")
        out.append(x)
    return out
