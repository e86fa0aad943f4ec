"""pass@k with the unbiased estimator of Chen et al. (2021): 1 - C(n-c, k) / C(n, k).

Computed per task and averaged over tasks. Undefined (``None``, never 0) when any task
has fewer than ``k`` attempts, because the estimator needs at least ``k`` samples.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from math import comb


def pass_at_k_task(n: int, c: int, k: int) -> float | None:
    """Unbiased pass@k of one task with ``n`` attempts of which ``c`` succeeded."""
    if k < 1 or n < k:
        return None
    if not 0 <= c <= n:
        raise ValueError(f"successes c={c} must be within 0..n={n}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def pass_at_k(per_task: Mapping[str, tuple[int, int]], k: int) -> float | None:
    """Mean pass@k over tasks given ``{task: (n, c)}``; None if empty or any task has n < k."""
    values = [pass_at_k_task(n, c, k) for n, c in per_task.values()]
    if not values or any(v is None for v in values):
        return None
    return sum(v for v in values if v is not None) / len(values)


def pass_at_k_table(per_task: Mapping[str, tuple[int, int]], ks: Iterable[int]) -> dict[str, float | None]:
    """``{"1": ..., "2": ...}`` for every k (keys are strings, as in the JSON outputs)."""
    return {str(k): pass_at_k(per_task, k) for k in ks}
