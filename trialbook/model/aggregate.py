"""The job aggregate (``results.json`` / ``result.json``) computed from trial records.

Rates say what they count: ``success_rate`` = resolved / finished trials of the variant
(error outcomes count in the denominator and are reported separately in ``outcomes``);
``mean_rewards`` average only trials that have a reward. Works on records from any layout.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from trialbook.model.evals import harbor_evals
from trialbook.model.job_files import check_results
from trialbook.model.outcome import ERROR_OUTCOMES, Outcome
from trialbook.model.tally import Graded, Tally, _mean, tally
from trialbook.model.trial import TrialRecord
from trialbook.model.usage import Usage

__all__ = ["AGGREGATE_SCHEMA", "Graded", "Tally", "aggregate", "tally", "task_counts", "variant_stats"]

AGGREGATE_SCHEMA = "trialbook.job-results/1"


def task_counts(records: Iterable[Graded]) -> dict[str, tuple[int, int]]:
    """``{task: (n finished attempts, n resolved)}`` (cancelled trials are not attempts)."""
    return tally(records).per_task


def variant_stats(records: list[TrialRecord], max_k: int) -> dict[str, Any]:
    """Aggregate of one variant's finished trials."""
    graded = [r for r in records if r.outcome is not None and r.outcome != Outcome.CANCELLED]
    reward_keys = sorted({k for r in graded for k in (r.rewards or {})})
    counts = tally(records)
    usage = Usage.total(r.usage for r in graded)
    first = records[0] if records else None
    return {
        "agent": first.agent if first else None,
        "model": first.model if first else None,
        "n_trials": counts.n_trials,
        "n_tasks": len(counts.per_task),
        "n_success": counts.n_success,
        "n_errors": counts.n_errors,
        "success_rate": counts.success_rate,
        "mean_reward": counts.mean_reward,
        "mean_rewards": {
            k: _mean([r.rewards[k] for r in graded if r.rewards and k in r.rewards]) for k in reward_keys
        },
        "outcomes": counts.outcomes,
        "pass_at_k": counts.pass_at_k(range(1, max_k + 1)),
        "pass_at_k_n": {t: {"n": n, "c": c} for t, (n, c) in counts.per_task.items()},
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
    dataset: str | None = None,
) -> dict[str, Any]:
    """The whole job aggregate; pass@k is reported for k = 1..attempts.

    A trajgen job's (``result.json``) also has ``evals`` in Harbor's shape (:mod:`trialbook.model.evals`),
    keyed by agent, model and ``dataset``.
    """
    records = list(records)
    finished = [r for r in records if r.outcome is not None]
    by_variant: dict[str, list[TrialRecord]] = defaultdict(list)
    for r in finished:
        by_variant[r.variant].append(r)
    max_k = attempts or max((r.attempt for r in finished), default=1)
    errors = Counter(r.exception.type for r in finished if r.exception and r.outcome in ERROR_OUTCOMES)
    job_tally = tally(finished)
    out = {
        "schema": AGGREGATE_SCHEMA,
        "job": job,
        "kind": kind,
        "status": status,
        "started_at": started_at,
        "finished_at": finished_at,
        "n_trials_planned": n_planned,
        "n_trials": len(finished),
        "n_errors": job_tally.n_errors,
        "outcomes": job_tally.outcomes,
        "errors_by_type": dict(sorted(errors.items())),
        "success_rate_counts": "resolved / all finished trials (errors included in the denominator)",
        "variants": {v: variant_stats(rs, max_k) for v, rs in sorted(by_variant.items())},
        "usage": Usage.total(r.usage for r in finished).model_dump(mode="json"),
    }
    if kind == "trajgen":
        out["evals"] = harbor_evals(finished, dataset)
    if extra:
        out.update(extra)
    check_results(out)
    return out
