"""Baseline agents (``oracle``, ``nop``) as checks on the tasks rather than as contestants.

An oracle that does not resolve a task means the task is broken (its tests or its
solution), not that it is hard; a nop that resolves one means the task passes without any
work. Both are reported wherever results are shown, and baselines are kept out of task
difficulty tiers. Harbor uses the same two agent names, so this holds for its jobs too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from trialbook.model.outcome import Outcome

#: Agents whose results check the tasks themselves.
BASELINE_AGENTS = frozenset({"oracle", "nop"})


def is_baseline(agent: str | None) -> bool:
    """True for the oracle and nop agents (by agent name, whatever the variant is called)."""
    return (agent or "").lower() in BASELINE_AGENTS


@dataclass
class BaselineFinding:
    """A task a baseline got wrong: the oracle failed it, or nop passed it."""

    kind: str  # "oracle_fails" | "nop_passes"
    task: str
    variant: str
    n_trials: int
    n_resolved: int
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def message(self) -> str:
        seen = ", ".join(f"{k}={v}" for k, v in sorted(self.outcomes.items()))
        if self.kind == "oracle_fails":
            return (f"oracle fails on {self.task} ({self.n_resolved} of {self.n_trials} resolved: {seen}): "
                    "check its tests and solution")
        return (f"nop passes {self.task} ({self.n_resolved} of {self.n_trials} resolved): "
                "the task is solved by doing nothing; check its tests")

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "task": self.task, "variant": self.variant, "n_trials": self.n_trials,
                "n_resolved": self.n_resolved, "outcomes": self.outcomes, "message": self.message}


def baseline_findings(trials: Iterable[tuple[str, str, str | None, Outcome | str | None]]) -> list[BaselineFinding]:
    """Findings from ``(task, variant, agent, outcome)`` of every trial; unfinished and cancelled ones are skipped."""
    groups: dict[tuple[str, str, str], Counter[str]] = {}
    for task, variant, agent, outcome in trials:
        if not is_baseline(agent) or outcome in (None, Outcome.CANCELLED, "cancelled"):
            continue
        key = ((agent or "").lower(), task, variant)
        groups.setdefault(key, Counter())[str(outcome)] += 1
    found = []
    for (agent, task, variant), outcomes in sorted(groups.items()):
        n = sum(outcomes.values())
        resolved = outcomes.get(str(Outcome.RESOLVED), 0)
        if agent == "oracle" and resolved < n:
            found.append(BaselineFinding("oracle_fails", task, variant, n, resolved, dict(outcomes)))
        elif agent == "nop" and resolved > 0:
            found.append(BaselineFinding("nop_passes", task, variant, n, resolved, dict(outcomes)))
    return found
