"""The job aggregate (``results.json`` / ``result.json``) computed from trial records.

Rates say what they count: ``success_rate`` = resolved / finished trials of the variant
(error outcomes count in the denominator and are reported separately in ``outcomes``);
``mean_rewards`` average only trials that have a reward. Works on records from any layout.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from trialbook.model.evals import harbor_evals
from trialbook.model.job_files import check_results
from trialbook.model.numbers import mean
from trialbook.model.outcome import ERROR_OUTCOMES, Outcome
from trialbook.model.passk import pass_at_k_table
from trialbook.model.trial import TrialRecord
from trialbook.model.usage import Usage

AGGREGATE_SCHEMA = "trialbook.job-results/1"


def _mean(values: list[float]) -> float | None:
    return mean(values)


class Graded(Protocol):
    """What the reducer needs of a trial: a record, a summary's facts or an index row."""

    task: str
    outcome: Outcome | None
    reward: float | None


@dataclass(frozen=True, slots=True)
class Tally:
    """The counts every rate of trialbook is made of, for one group of trials (a job, a variant,
    a task), so results.json, summary.json and the index agree by construction.

    ``n_trials`` counts attempts: trials with an outcome other than cancelled. ``outcomes``
    counts every outcome, cancelled included. ``per_task`` is ``{task: (attempts, resolved)}``,
    what pass@k is computed from.
    """

    n_trials: int
    n_success: int
    n_errors: int
    mean_reward: float | None
    outcomes: dict[str, int]
    per_task: dict[str, tuple[int, int]]

    @property
    def success_rate(self) -> float | None:
        """Resolved / attempts (errors in the denominator); None without attempts."""
        return self.n_success / self.n_trials if self.n_trials else None

    def pass_at_k(self, ks: Iterable[int]) -> dict[str, float | None]:
        """Unbiased pass@k for each k (None where a task has fewer than k attempts)."""
        return pass_at_k_table(self.per_task, ks)


def tally(trials: Iterable[Graded]) -> Tally:
    """The one reducer of trial outcomes into counts (see :class:`Tally`)."""
    n: Counter[str] = Counter()
    c: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    rewards: list[float] = []
    errors = 0
    for t in trials:
        if t.outcome is None:
            continue
        outcomes[str(t.outcome)] += 1
        if t.outcome == Outcome.CANCELLED:
            continue
        n[t.task] += 1
        c[t.task] += t.outcome == Outcome.RESOLVED
        errors += t.outcome in ERROR_OUTCOMES
        if t.reward is not None:
            rewards.append(t.reward)
    return Tally(n_trials=sum(n.values()), n_success=sum(c.values()), n_errors=errors, mean_reward=_mean(rewards),
                 outcomes=dict(sorted(outcomes.items())), per_task={t: (n[t], c[t]) for t in sorted(n)})


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
