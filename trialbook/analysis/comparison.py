"""The metric reports of job analysis: ``traj_analysis/score_comparison.json``,
``instance_analysis/summary.json`` and ``instance_analysis/correlations.json`` (spec 000).

Comparison population: counted trials except ``infra_error`` ones (the agent never ran, so
their numbers describe the infrastructure, not the agent). "resolved" vs "unresolved" is
outcome ``resolved`` vs every other outcome of that population. A trial whose value of a
metric is unknown is left out of that metric only, so each statistic reports its own n.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from trialbook.analysis.failures import CATEGORIES
from trialbook.analysis.features import METRICS, TrialFeatures
from trialbook.analysis.reports import tier_of
from trialbook.analysis.stats import describe, mann_whitney, point_biserial, spearman
from trialbook.model.numbers import mean

#: What each metric measures (reports carry this so a reader needs no other document).
METRIC_DOCS: dict[str, str] = {
    "n_turns": "agent turns (LLM replies)",
    "n_tool_calls": "tool calls the agent made",
    "total_tokens": "prompt + completion tokens",
    "cost_usd": "LLM cost in USD",
    "duration_s": "wall time of the whole trial in seconds",
    "patch_lines": "changed lines (+/-) of the final patch",
    "n_test_runs": "tool calls that ran tests (see docs/analysis.md)",
    "n_error_observations": "observations showing an error: non-zero exit, traceback, error marker",
}
POPULATION = "counted trials except infra_error; resolved = outcome resolved, unresolved = every other outcome"


def comparison_population(features: list[TrialFeatures]) -> list[TrialFeatures]:
    """The trials metric comparisons use (module docstring)."""
    return [f for f in features if f.counted and f.outcome != "infra_error"]


def _values(trials: list[TrialFeatures], metric: str) -> list[float]:
    return [v for v in (f.metric(metric) for f in trials) if v is not None]


def _compare(trials: list[TrialFeatures]) -> dict[str, Any]:
    ok = [f for f in trials if f.resolved]
    bad = [f for f in trials if not f.resolved]
    out = {}
    for metric in METRICS:
        x, y = _values(ok, metric), _values(bad, metric)
        out[metric] = {"resolved": describe(x).to_json(), "unresolved": describe(y).to_json(),
                       "mann_whitney": mann_whitney(x, y).to_json()}
    return out


def _by_variant(trials: list[TrialFeatures]) -> dict[str, list[TrialFeatures]]:
    out: dict[str, list[TrialFeatures]] = {}
    for f in trials:
        out.setdefault(f.variant, []).append(f)
    return dict(sorted(out.items()))


def build_score_comparison(features: list[TrialFeatures], job: str) -> dict[str, Any]:
    """Resolved vs unresolved on every metric: mean/median/p90 and a Mann-Whitney U test, overall and per variant."""
    pop = comparison_population(features)
    return {
        "schema": "trialbook.analysis.score_comparison/1",
        "job": job,
        "population": POPULATION,
        "test": "two-sided Mann-Whitney U, normal approximation with tie and continuity correction; "
                "effect size = rank-biserial 2U/(n_resolved*n_unresolved) - 1 (positive: resolved larger)",
        "metrics": METRIC_DOCS,
        "n_resolved": sum(f.resolved for f in pop),
        "n_unresolved": sum(not f.resolved for f in pop),
        "overall": _compare(pop),
        "by_variant": {v: _compare(g) for v, g in _by_variant(pop).items()},
    }


def _correlate(trials: list[TrialFeatures]) -> dict[str, Any]:
    out = {}
    for metric in METRICS:
        pairs = [(f.resolved, v) for f in trials if (v := f.metric(metric)) is not None]
        flags = [p[0] for p in pairs]
        values = [p[1] for p in pairs]
        out[metric] = {"spearman": spearman([float(x) for x in flags], values).to_json(),
                       "point_biserial": point_biserial(flags, values).to_json()}
    return out


def build_correlations(features: list[TrialFeatures], job: str) -> dict[str, Any]:
    """Spearman and point-biserial correlation of each metric with success, with n, overall and per variant."""
    pop = comparison_population(features)
    return {
        "schema": "trialbook.analysis.correlations/1",
        "job": job,
        "population": POPULATION,
        "success": "1 when the outcome is resolved, else 0",
        "method": "Spearman rho on average ranks and point-biserial r; two-sided p from Student's t, n-2 df; "
                  "null when n < 3 or a variable is constant",
        "metrics": METRIC_DOCS,
        "overall": _correlate(pop),
        "by_variant": {v: _correlate(g) for v, g in _by_variant(pop).items()},
    }


def _mean(values: list[float]) -> float | None:
    return mean(values)


def build_instance_summary(features: list[TrialFeatures], job: str) -> dict[str, Any]:
    """One row per (task, variant): counts, solve rate and tier, outcomes, failure categories, metric means."""
    groups: dict[tuple[str, str], list[TrialFeatures]] = {}
    for f in features:
        groups.setdefault((f.task, f.variant), []).append(f)
    rows = []
    for (task, variant), group in sorted(groups.items()):
        counted = [f for f in group if f.counted]
        n_res = sum(f.resolved for f in counted)
        rate = n_res / len(counted) if counted else None
        cats = Counter(f.category for f in counted if f.category)
        rows.append({
            "task": task, "variant": variant, "gold": group[0].gold, "task_tier": group[0].tier,
            "n_trials": len(counted), "n_listed": len(group), "n_resolved": n_res, "solve_rate": rate,
            "tier": tier_of(rate),
            "outcomes": dict(sorted(Counter(f.outcome or "running" for f in group).items())),
            "failure_categories": {c: cats[c] for c in CATEGORIES if cats[c]},
            "mean": {m: _mean(_values(counted, m)) for m in METRICS},
            "trial_ids": [f.trial_id for f in group],
        })
    return {"schema": "trialbook.analysis.instance_summary/1", "job": job,
            "population": "every listed trial; counts, rates and means over counted trials",
            "n_rows": len(rows), "rows": rows}
