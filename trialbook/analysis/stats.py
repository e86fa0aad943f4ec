"""Descriptive statistics and rank tests in pure Python (no numpy/scipy at run time).

* :func:`describe`: n, mean, median and p90 (linear interpolation between closest ranks,
  numpy's default ``percentile`` method).
* :func:`mann_whitney`: two-sided Mann-Whitney U, normal approximation with tie correction
  and continuity correction (scipy's ``mannwhitneyu(method="asymptotic")``); ``u`` is the
  statistic of the first sample, ``effect_size`` the rank-biserial correlation
  ``2U/(n1 n2) - 1`` (positive: the first sample tends to be larger).
* :func:`spearman` (Pearson on average ranks, so ties are handled) and :func:`point_biserial`
  (Pearson with a 0/1 variable), with two-sided p-values from Student's t with n-2 degrees
  of freedom, as scipy's ``spearmanr`` / ``pointbiserialr``.

Undefined results (an empty group, a constant variable, fewer than 3 pairs) are ``None``,
never NaN; a Mann-Whitney test on samples that are all one value has p = 1, as in scipy.
``tests/test_analysis_stats.py`` checks every function against scipy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from trialbook.model.numbers import mean


@dataclass(frozen=True)
class Description:
    """Location summary of one sample."""

    n: int
    mean: float | None
    median: float | None
    p90: float | None

    def to_json(self) -> dict[str, float | int | None]:
        return {"n": self.n, "mean": self.mean, "median": self.median, "p90": self.p90}


@dataclass(frozen=True)
class MannWhitney:
    """Result of a two-sided Mann-Whitney U test."""

    u: float | None
    p_value: float | None
    effect_size: float | None
    n1: int
    n2: int

    def to_json(self) -> dict[str, float | int | None]:
        return {"u": self.u, "p_value": self.p_value, "effect_size_rank_biserial": self.effect_size,
                "n_resolved": self.n1, "n_unresolved": self.n2}


@dataclass(frozen=True)
class Correlation:
    """A correlation coefficient with its two-sided p-value and the number of pairs."""

    r: float | None
    p_value: float | None
    n: int

    def to_json(self) -> dict[str, float | int | None]:
        return {"r": self.r, "p_value": self.p_value, "n": self.n}


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q`` quantile of already sorted values, linear between closest ranks."""
    h = (len(sorted_values) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (h - lo) * (sorted_values[hi] - sorted_values[lo])


def describe(values: Sequence[float]) -> Description:
    """n, mean, median, p90 of ``values`` (all None but n when empty)."""
    if not values:
        return Description(0, None, None, None)
    xs = sorted(values)
    return Description(len(xs), mean(xs), quantile(xs, 0.5), quantile(xs, 0.9))


def average_ranks(values: Sequence[float]) -> list[float]:
    """Ranks 1..n, tied values sharing the mean of the ranks they span."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _tie_sum(values: Sequence[float]) -> float:
    """Sum of t^3 - t over groups of t tied values."""
    counts: dict[float, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return float(sum(t ** 3 - t for t in counts.values()))


def normal_sf(z: float) -> float:
    """Upper tail of the standard normal distribution."""
    return 0.5 * math.erfc(z / math.sqrt(2))


def mann_whitney(x: Sequence[float], y: Sequence[float]) -> MannWhitney:
    """Two-sided Mann-Whitney U of ``x`` against ``y`` (see the module docstring)."""
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        return MannWhitney(None, None, None, n1, n2)
    combined = [*x, *y]
    ranks = average_ranks(combined)
    u1 = math.fsum(ranks[:n1]) - n1 * (n1 + 1) / 2
    effect = 2 * u1 / (n1 * n2) - 1
    n = n1 + n2
    variance = n1 * n2 / 12 * ((n + 1) - _tie_sum(combined) / (n * (n - 1)))
    if variance <= 0:  # every value tied: no evidence of a difference (scipy says 1.0 too)
        return MannWhitney(u1, 1.0, effect, n1, n2)
    u = max(u1, n1 * n2 - u1)
    z = (u - n1 * n2 / 2 - 0.5) / math.sqrt(variance)
    return MannWhitney(u1, min(1.0, 2 * normal_sf(z)), effect, n1, n2)


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz's method)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1, a - 1
    c, d = 1.0, 1 - qab * x / qap
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10000):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1 + aa * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1 - front * _betacf(b, a, 1 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """Two-sided p-value of Student's t statistic with ``df`` degrees of freedom."""
    if math.isinf(t):
        return 0.0
    return min(1.0, betainc(df / 2, 0.5, df / (df + t * t)))


def pearson(x: Sequence[float], y: Sequence[float]) -> Correlation:
    """Pearson's r with a t-test p-value (None when n < 3 or a variable is constant)."""
    n = len(x)
    if n != len(y):
        raise ValueError("pearson: samples differ in length")
    if n < 3:
        return Correlation(None, None, n)
    mx, my = math.fsum(x) / n, math.fsum(y) / n
    sxy = math.fsum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx = math.fsum((a - mx) ** 2 for a in x)
    syy = math.fsum((b - my) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        return Correlation(None, None, n)
    r = max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))
    df = n - 2
    t = math.inf if abs(r) == 1 else r * math.sqrt(df / ((1 - r) * (1 + r)))
    return Correlation(r, t_two_sided_p(t, df), n)


def spearman(x: Sequence[float], y: Sequence[float]) -> Correlation:
    """Spearman's rho (Pearson on average ranks) with a t-test p-value."""
    return pearson(average_ranks(x), average_ranks(y))


def point_biserial(flags: Sequence[bool], values: Sequence[float]) -> Correlation:
    """Point-biserial correlation of a 0/1 variable (e.g. resolved) with a numeric one."""
    return pearson([1.0 if f else 0.0 for f in flags], values)
