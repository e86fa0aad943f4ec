"""Arithmetic on numbers that come from untrusted files (rewards, usage): no overflow crashes.

A reward may legitimately be as large as a float allows (``1e308``); a plain sum of two
overflows to ``inf`` and ``math.fsum`` raises ``OverflowError``. The mean here never does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def mean(values: Iterable[float | int]) -> float | None:
    """The arithmetic mean (None for no values), exact where ``math.fsum`` is and finite for finite input."""
    xs = [float(v) for v in values]
    if not xs:
        return None
    n = len(xs)
    try:
        total = math.fsum(xs)
    except OverflowError:
        total = math.inf
    if math.isfinite(total):
        return total / n
    return math.fsum(x / n for x in xs)  # scaled first: no intermediate overflow
