"""The ``evals`` section of a trajgen job's ``result.json``, in Harbor's ``JobStats.evals`` shape.

Harbor keys its per-eval statistics ``<agent>__<model>__<dataset>`` (``<agent>__<dataset>``
without a model; the dataset is ``adhoc`` when unnamed) and gives each::

    {"n_trials": trials with rewards, "n_errors": trials with an exception,
     "metrics": [{"mean": mean reward, a trial without reward counting 0}],
     "pass_at_k": {"2": ..., "4": ..., "5": ...},   # k = 2, 4, 8, ... and 5, 10, ... up to the
                                                   # fewest attempts of any task; binary rewards only
     "reward_stats": {"reward": {"1.0": [trial names], "0.0": [...]}},
     "exception_stats": {"AgentTimeoutError": [trial names]}}

so tools that read Harbor's job results (and the dashboard) find the same figures in ours.
Variants sharing agent and model fall into one entry, as in Harbor. Cancelled trials are left
out (they run again on resume). pass@k is the unbiased estimator of :mod:`trialbook.model.passk`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from trialbook.model.outcome import ERROR_OUTCOMES, Outcome
from trialbook.model.passk import pass_at_k_task
from trialbook.model.trial import TrialRecord

#: Harbor's dataset name for trials of no named dataset.
ADHOC = "adhoc"


def evals_key(agent: str, model: str | None, dataset: str | None) -> str:
    """Harbor's key of one eval: ``agent__model__dataset`` (``agent__dataset`` without a model)."""
    return f"{agent}__{model}__{dataset or ADHOC}" if model else f"{agent}__{dataset or ADHOC}"


def eligible_ks(max_k: int) -> list[int]:
    """The k Harbor reports pass@k for: powers of two from 2, and multiples of 5, up to ``max_k``."""
    ks = {2 ** i for i in range(1, max_k.bit_length() + 1) if 2 ** i <= max_k}
    ks |= set(range(5, max_k + 1, 5))
    return sorted(ks)


def _pass_at_k(trials: list[TrialRecord]) -> dict[str, float]:
    """Harbor's pass@k of one eval; empty unless every reward is a single 0/1 value."""
    per_task: dict[str, list[int]] = defaultdict(list)
    for r in trials:
        rewards = r.rewards if r.rewards is not None else ({"reward": r.reward} if r.reward is not None else None)
        if rewards is None:
            per_task[r.task].append(0)
            continue
        if len(rewards) != 1 or next(iter(rewards.values())) not in (0, 1):
            return {}
        per_task[r.task].append(int(next(iter(rewards.values()))))
    if not per_task:
        return {}
    out = {}
    for k in eligible_ks(min(len(s) for s in per_task.values())):
        values = [pass_at_k_task(len(s), sum(s), k) for s in per_task.values()]
        out[str(k)] = sum(v for v in values if v is not None) / len(values)
    return out


def _eval_stats(trials: list[TrialRecord]) -> dict[str, Any]:
    reward_stats: dict[str, dict[str, list[str]]] = {}
    exception_stats: dict[str, list[str]] = {}
    n_trials = n_errors = 0
    values: list[dict[str, float] | None] = []
    for r in trials:
        rewards = r.rewards if r.rewards is not None else ({"reward": r.reward} if r.reward is not None else None)
        values.append(rewards)
        if rewards is not None:
            n_trials += 1
            for key, value in rewards.items():
                reward_stats.setdefault(key, {}).setdefault(str(value), []).append(r.trial_name)
        if r.outcome in ERROR_OUTCOMES:
            n_errors += 1
            kind = r.exception.type if r.exception else str(r.outcome)
            exception_stats.setdefault(kind, []).append(r.trial_name)
    keys = sorted({k for v in values if v for k in v})
    if len(keys) <= 1:
        flat = [0.0 if v is None else next(iter(v.values()), 0.0) for v in values]
        metrics = [{"mean": sum(flat) / len(flat)}] if flat else []
    else:
        metrics = [{k: sum(0.0 if v is None else v.get(k, 0.0) for v in values) / len(values) for k in keys}]
    return {"n_trials": n_trials, "n_errors": n_errors, "metrics": metrics, "pass_at_k": _pass_at_k(trials),
            "reward_stats": reward_stats, "exception_stats": exception_stats}


def harbor_evals(records: Iterable[TrialRecord], dataset: str | None) -> dict[str, dict[str, Any]]:
    """``evals`` of the finished, non-cancelled ``records`` of a job over ``dataset``, keyed as Harbor keys them."""
    groups: dict[str, list[TrialRecord]] = defaultdict(list)
    for r in records:
        if r.outcome is None or r.outcome == Outcome.CANCELLED:
            continue
        groups[evals_key(r.agent, r.model, dataset)].append(r)
    return {key: _eval_stats(trials) for key, trials in sorted(groups.items())}
