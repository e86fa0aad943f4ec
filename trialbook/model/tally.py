"""The one reducer of trial outcomes into the counts every rate is made of (:func:`tally`).

Kept apart from :mod:`trialbook.model.aggregate` and free of pydantic, so a summary computed
from the index (``show``) imports no trial model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from trialbook.model.numbers import mean
from trialbook.model.outcome import ERROR_OUTCOMES, Outcome
from trialbook.model.passk import pass_at_k_table


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
