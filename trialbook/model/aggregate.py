"""The job aggregate (``results.json`` / ``result.json``) computed from trial records.

Rates say what they count: ``success_rate`` = resolved / finished trials of the variant
(error outcomes count in the denominator and are reported separately in ``outcomes``);
``mean_rewards`` average only trials that have a reward. Works on records from any layout.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from trialbook.model.numbers import mean
from trialbook.model.outcome import ERROR_OUTCOMES, Outcome
from trialbook.model.passk import pass_at_k_table
from trialbook.model.trial import TrialRecord
from trialbook.model.usage import Usage

AGGREGATE_SCHEMA = "trialbook.job-results/1"


def _mean(values: list[float]) -> float | None:
    return mean(values)


def task_counts(records: Iterable[TrialRecord]) -> dict[str, tuple[int, int]]:
    """``{task: (n finished attempts, n resolved)}`` (cancelled trials are not attempts)."""
    n: Counter[str] = Counter()
    c: Counter[str] = Counter()
    for r in records:
        if r.outcome is None or r.outcome == Outcome.CANCELLED:
            continue
        n[r.task] += 1
        c[r.task] += r.outcome == Outcome.RESOLVED
    return {t: (n[t], c[t]) for t in sorted(n)}


def variant_stats(records: list[TrialRecord], max_k: int) -> dict[str, Any]:
    """Aggregate of one variant's finished trials."""
    graded = [r for r in records if r.outcome is not None and r.outcome != Outcome.CANCELLED]
    reward_keys = sorted({k for r in graded for k in (r.rewards or {})})
    per_task = task_counts(graded)
    n_success = sum(r.outcome == Outcome.RESOLVED for r in graded)
    usage = Usage.total(r.usage for r in graded)
    first = records[0] if records else None
    return {
        "agent": first.agent if first else None,
        "model": first.model if first else None,
        "n_trials": len(graded),
        "n_tasks": len(per_task),
        "n_success": n_success,
        "n_errors": sum(r.outcome in ERROR_OUTCOMES for r in graded),
        "success_rate": n_success / len(graded) if graded else None,
        "mean_reward": _mean([r.reward for r in graded if r.reward is not None]),
        "mean_rewards": {
            k: _mean([r.rewards[k] for r in graded if r.rewards and k in r.rewards]) for k in reward_keys
        },
        "outcomes": dict(sorted(Counter(str(r.outcome) for r in records if r.outcome).items())),
        "pass_at_k": pass_at_k_table(per_task, range(1, max_k + 1)),
        "pass_at_k_n": {t: {"n": n, "c": c} for t, (n, c) in per_task.items()},
        "usage": usage.model_dump(mode="json"),
    }


def aggregate(
    records: Iterable[TrialRecord],
    *,
    job: str,
    kind: str = "eval",
    attempts: int | None = None,
    n_planned: int | None = None,
    started_at: str | None = None,
    finished_at: str | None = None,
    status: str = "running",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The whole job aggregate; pass@k is reported for k = 1..attempts."""
    records = list(records)
    finished = [r for r in records if r.outcome is not None]
    by_variant: dict[str, list[TrialRecord]] = defaultdict(list)
    for r in finished:
        by_variant[r.variant].append(r)
    max_k = attempts or max((r.attempt for r in finished), default=1)
    errors = Counter(r.exception.type for r in finished if r.exception and r.outcome in ERROR_OUTCOMES)
    out = {
        "schema": AGGREGATE_SCHEMA,
        "job": job,
        "kind": kind,
        "status": status,
        "started_at": started_at,
        "finished_at": finished_at,
        "n_trials_planned": n_planned,
        "n_trials": len(finished),
        "n_errors": sum(r.outcome in ERROR_OUTCOMES for r in finished),
        "outcomes": dict(sorted(Counter(str(r.outcome) for r in finished).items())),
        "errors_by_type": dict(sorted(errors.items())),
        "success_rate_counts": "resolved / all finished trials (errors included in the denominator)",
        "variants": {v: variant_stats(rs, max_k) for v, rs in sorted(by_variant.items())},
        "usage": Usage.total(r.usage for r in finished).model_dump(mode="json"),
    }
    if extra:
        out.update(extra)
    return out
