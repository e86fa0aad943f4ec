"""The distribution reports of job analysis: ``report_failed.json``, ``report_resolved.json`` and
``report_task_analysis.json`` (spec 000), built from the per-trial features.

Population: *counted* trials, i.e. finished with an outcome other than ``cancelled`` (as in
``summary.json``); others are listed under ``excluded``. Trials are grouped along
:data:`AXES`; a task without a value for an axis is grouped under ``"unknown"``, never dropped.
Difficulty tiers (:data:`TIERS`) are by a task's solve rate over every attempt of every
variant except the baselines (oracle, nop): those check the tasks, they are not contestants,
and what they found is reported under ``baseline_findings``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from trialbook.analysis.failures import CATEGORIES, RULES, RULESET_VERSION
from trialbook.analysis.features import TrialFeatures
from trialbook.analysis.gold import AXIS_FIELDS
from trialbook.model.baselines import baseline_findings, is_baseline

UNKNOWN = "unknown"
#: Axes of the failed/resolved reports: the variant, the gold fields and the observed tier.
AXES: tuple[str, ...] = ("variant", *AXIS_FIELDS, "tier")

#: Lower bound of the "mostly solved" tier; documented with the others in :data:`TIERS`.
MOSTLY_MIN = 0.5
#: Tier names and their rule on a task's solve rate (resolved / counted trials).
TIERS: dict[str, str] = {
    "always": "solve_rate == 1",
    "mostly": f"{MOSTLY_MIN} <= solve_rate < 1",
    "sometimes": f"0 < solve_rate < {MOSTLY_MIN}",
    "never": "solve_rate == 0",
    UNKNOWN: "no counted trial of a non-baseline agent",
}

#: Bucket lower edges; a value v is in the bucket [edge_i, edge_i+1), the last is open.
TURN_EDGES: tuple[int, ...] = (0, 5, 10, 20, 50, 100)
TOKEN_EDGES: tuple[int, ...] = (0, 10_000, 50_000, 100_000, 500_000, 1_000_000)


def tier_of(rate: float | None) -> str:
    """The difficulty tier of a solve rate (see :data:`TIERS`)."""
    if rate is None:
        return UNKNOWN
    if rate >= 1:
        return "always"
    if rate >= MOSTLY_MIN:
        return "mostly"
    return "sometimes" if rate > 0 else "never"


def axis_value(f: TrialFeatures, axis: str) -> str:
    """The group of a trial on ``axis`` ("unknown" when its task has no value)."""
    if axis == "variant":
        return f.variant
    if axis == "tier":
        return f.tier or UNKNOWN
    value = f.gold.get(axis)
    return str(value) if value not in (None, "") else UNKNOWN


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def _group(features: Iterable[TrialFeatures], key: Callable[[TrialFeatures], str]) -> dict[str, list[TrialFeatures]]:
    out: dict[str, list[TrialFeatures]] = {}
    for f in features:
        out.setdefault(key(f), []).append(f)
    return out


def _ids(features: Iterable[TrialFeatures]) -> list[str]:
    return [f.trial_id for f in features]


def _excluded(features: list[TrialFeatures]) -> dict[str, Any]:
    out = [f for f in features if not f.counted]
    return {"n": len(out), "why": "not counted: cancelled, or still running (no outcome)",
            "trial_ids": _ids(out)}


def _categories(failed: list[TrialFeatures], *, keep_zero: bool) -> dict[str, Any]:
    by = _group(failed, lambda f: f.category or "unresolved_other")
    out = {}
    for cat in CATEGORIES:
        items = by.get(cat, [])
        if items or keep_zero:
            out[cat] = {"count": len(items), "share": _rate(len(items), len(failed)), "trial_ids": _ids(items)}
    return out


def build_failed(features: list[TrialFeatures], job: str) -> dict[str, Any]:
    """``report_failed.json``: primary-category counts and shares, overall and along every axis."""
    counted = [f for f in features if f.counted]
    failed = [f for f in counted if not f.resolved]
    rules = {}
    for rule in RULES:
        items = [f for f in failed if f.rule == rule.name]
        rules[rule.name] = {"category": rule.category, "count": len(items), "trial_ids": _ids(items)}
    by_axis: dict[str, Any] = {}
    for axis in AXES:
        cells = {}
        for value, group in sorted(_group(counted, lambda f, a=axis: axis_value(f, a)).items()):
            cell_failed = [f for f in group if not f.resolved]
            cells[value] = {"n_trials": len(group), "n_failed": len(cell_failed),
                            "failure_rate": _rate(len(cell_failed), len(group)),
                            "categories": _categories(cell_failed, keep_zero=False)}
        by_axis[axis] = cells
    return {
        "schema": "trialbook.analysis.report_failed/1",
        "job": job,
        "ruleset_version": RULESET_VERSION,
        "population": "counted trials that are not resolved; share = count / n_failed of the same cell",
        "n_counted": len(counted),
        "n_failed": len(failed),
        "failure_rate": _rate(len(failed), len(counted)),
        "category_order": list(CATEGORIES),
        "category_labels": dict(CATEGORIES),
        "primary": _categories(failed, keep_zero=True),
        "rules": rules,
        "axes": list(AXES),
        "by_axis": by_axis,
        "excluded": _excluded(features),
    }


def bucket_labels(edges: tuple[int, ...], fmt: Callable[[int], str], inclusive: bool) -> list[str]:
    """Labels of the buckets ``edges`` define: ``0-4`` (inclusive ints) or ``0-10k`` (half-open)."""
    labels = []
    for i, lo in enumerate(edges):
        if i + 1 == len(edges):
            labels.append(f"{fmt(lo)}+")
        else:
            hi = edges[i + 1] - 1 if inclusive else edges[i + 1]
            labels.append(f"{fmt(lo)}-{fmt(hi)}")
    return labels


def _k(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def _bucket(value: float | None, edges: tuple[int, ...], labels: list[str]) -> str:
    if value is None:
        return UNKNOWN
    idx = 0
    for i, lo in enumerate(edges):
        if value >= lo:
            idx = i
    return labels[idx]


def _buckets(trials: list[TrialFeatures], metric: str, edges: tuple[int, ...], labels: list[str]) -> dict[str, Any]:
    by = _group(trials, lambda f: _bucket(f.metric(metric), edges, labels))
    return {label: {"count": len(by.get(label, [])), "share": _rate(len(by.get(label, [])), len(trials)),
                    "trial_ids": _ids(by.get(label, []))} for label in [*labels, UNKNOWN]}


def build_resolved(features: list[TrialFeatures], job: str) -> dict[str, Any]:
    """``report_resolved.json``: resolve counts along every axis, and turn/token buckets of resolved trials."""
    counted = [f for f in features if f.counted]
    resolved = [f for f in counted if f.resolved]
    by_axis: dict[str, Any] = {}
    for axis in AXES:
        cells = {}
        for value, group in sorted(_group(counted, lambda f, a=axis: axis_value(f, a)).items()):
            ok = [f for f in group if f.resolved]
            cells[value] = {"n_trials": len(group), "n_resolved": len(ok),
                            "resolve_rate": _rate(len(ok), len(group)), "trial_ids": _ids(ok)}
        by_axis[axis] = cells
    specs = {"turns": ("n_turns", TURN_EDGES, bucket_labels(TURN_EDGES, str, inclusive=True)),
             "tokens": ("total_tokens", TOKEN_EDGES, bucket_labels(TOKEN_EDGES, _k, inclusive=False))}
    buckets = {}
    for name, (metric, edges, labels) in specs.items():
        by_variant = {v: _buckets(g, metric, edges, labels)
                      for v, g in sorted(_group(resolved, lambda f: f.variant).items())}
        buckets[name] = {"metric": metric, "edges": list(edges), "order": [*labels, UNKNOWN],
                         "overall": _buckets(resolved, metric, edges, labels), "by_variant": by_variant}
    return {
        "schema": "trialbook.analysis.report_resolved/1",
        "job": job,
        "population": "counted trials that are resolved; rates over the counted trials of the cell",
        "n_counted": len(counted),
        "n_resolved": len(resolved),
        "resolve_rate": _rate(len(resolved), len(counted)),
        "trial_ids": _ids(resolved),
        "axes": list(AXES),
        "by_axis": by_axis,
        "buckets": buckets,
        "excluded": _excluded(features),
    }


def task_rates(features: list[TrialFeatures]) -> dict[str, float | None]:
    """Solve rate of every task over all its counted trials (None when it has none)."""
    out = {}
    for task, group in sorted(_group(features, lambda f: f.task).items()):
        counted = [f for f in group if f.counted]
        out[task] = _rate(sum(f.resolved for f in counted), len(counted))
    return out


def tier_rates(features: list[TrialFeatures]) -> dict[str, float | None]:
    """The solve rates tiers are made of: every task, over its non-baseline trials only."""
    rates = task_rates([f for f in features if not is_baseline(f.agent)])
    return {task: rates.get(task) for task in sorted({f.task for f in features})}


def _solve_stats(group: list[TrialFeatures]) -> dict[str, Any]:
    counted = [f for f in group if f.counted]
    rates = [r for r in task_rates(counted).values() if r is not None]
    n_res = sum(f.resolved for f in counted)
    return {"n_tasks": len(rates), "n_trials": len(counted), "n_resolved": n_res,
            "solve_rate": _rate(n_res, len(counted)),
            "mean_task_solve_rate": sum(rates) / len(rates) if rates else None}


def _task_entry(group: list[TrialFeatures], gold: dict[str, Any], has_gold: bool) -> dict[str, Any]:
    counted = [f for f in group if f.counted]
    n_res = sum(f.resolved for f in counted)
    rate = _rate(n_res, len(counted))
    contestants = [f for f in counted if not is_baseline(f.agent)]
    tier_rate = _rate(sum(f.resolved for f in contestants), len(contestants))
    by_variant = {}
    for v, vg in sorted(_group(counted, lambda f: f.variant).items()):
        v_res = sum(f.resolved for f in vg)
        by_variant[v] = {"n_trials": len(vg), "n_resolved": v_res, "solve_rate": _rate(v_res, len(vg)),
                         "tier": tier_of(_rate(v_res, len(vg)))}
    return {"n_trials": len(counted), "n_resolved": n_res, "solve_rate": rate, "tier": tier_of(tier_rate),
            "tier_solve_rate": tier_rate, "gold": gold, "has_gold": has_gold, "by_variant": by_variant}


def _separating(tasks: dict[str, dict[str, Any]], variants: list[str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Tasks one variant solves at least once and another never does; and the pairwise counts."""
    found = []
    matrix: dict[str, dict[str, int]] = {a: {b: 0 for b in variants if b != a} for a in variants}
    for task, entry in tasks.items():
        bv = entry["by_variant"]
        solved = sorted(v for v, s in bv.items() if s["n_resolved"] > 0)
        never = sorted(v for v, s in bv.items() if s["n_resolved"] == 0)
        if solved and never:
            found.append({"task": task, "solved_by": solved, "never_solved_by": never,
                          "solve_rates": {v: s["solve_rate"] for v, s in bv.items()}})
            for a in solved:
                for b in never:
                    matrix[a][b] += 1
    return found, matrix


def build_task_analysis(features: list[TrialFeatures], job: str, gold_tasks: dict[str, dict[str, Any]],
                        explicit: set[str], coverage: dict[str, Any]) -> dict[str, Any]:
    """``report_task_analysis.json``: per-task solve rates and tiers, breakdowns, separating tasks."""
    tasks = {task: _task_entry(group, gold_tasks.get(task, {}), task in explicit)
             for task, group in sorted(_group(features, lambda f: f.task).items())}
    tier_tasks: dict[str, list[str]] = {t: [] for t in TIERS}
    for task, entry in tasks.items():
        tier_tasks[entry["tier"]].append(task)
    variants = sorted({f.variant for f in features if f.counted})
    breakdowns: dict[str, Any] = {}
    for axis in AXIS_FIELDS:
        cells = {}
        for value, group in sorted(_group(features, lambda f, a=axis: axis_value(f, a)).items()):
            cells[value] = {"all": _solve_stats(group),
                            "by_variant": {v: _solve_stats(g) for v, g in sorted(_group(group, lambda f: f.variant).items())}}
        breakdowns[axis] = cells
    separating, matrix = _separating(tasks, variants)
    return {
        "schema": "trialbook.analysis.report_task_analysis/1",
        "job": job,
        "population": "counted trials; solve_rate = resolved / counted trials, over every variant and attempt",
        "n_tasks": len(tasks),
        "variants": variants,
        "tiers": {"definition": dict(TIERS), "mostly_min": MOSTLY_MIN, "order": list(TIERS),
                  "counts": {t: len(v) for t, v in tier_tasks.items()}, "tasks": tier_tasks},
        "tasks": tasks,
        "breakdowns": breakdowns,
        "separating_tasks": separating,
        "separation_matrix": {"meaning": "row variant solves the task at least once, column variant never",
                              "counts": matrix},
        "baseline_findings": [b.to_json() for b in baseline_findings(
            (f.task, f.variant, f.agent, f.outcome) for f in features if f.counted)],
        "gold": coverage,
    }
