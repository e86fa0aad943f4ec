"""``summary.json``: the per-variant / per-task summary of one job, for any layout (spec 004).

The same numbers come out whether the trials are read from the files (a :class:`JobView`)
or from ``results/index.db``: both are reduced to :class:`TrialFacts` first, and
:func:`build_summary` only sees those.

What counts (every rate says it):

* a trial *counts* when it has an outcome other than ``cancelled`` (a running or
  cancelled trial is listed in ``n_trials_listed`` but is no attempt);
* ``success_rate`` = resolved / counted trials; error outcomes stay in the denominator
  and are reported as ``failures`` / ``n_errors`` (never silently scored as 0);
* ``mean_reward`` averages counted trials that have a reward; usage totals are sums over
  counted trials and stay null when no trial knows them (unknown is not zero);
* ``pass_at_k`` uses the unbiased estimator of :mod:`trialbook.model.passk` for
  k = 1..``k_max``, the largest number of counted attempts of any (variant, task); null
  where undefined.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trialbook.jsonio import atomic_write_text, write_json
from trialbook.layout.paths import JobPaths
from trialbook.model.baselines import baseline_findings
from trialbook.model.numbers import mean
from trialbook.model.outcome import ERROR_OUTCOMES, Outcome
from trialbook.model.tally import tally
from trialbook.results.summary_md import render_summary_md

if TYPE_CHECKING:  # the pydantic models are imported only by the file side (show PATH, runs)
    from trialbook.model.trial import TrialRecord
    from trialbook.sources.base import JobView

SUMMARY_SCHEMA = "trialbook.summary/1"


def _utc_now() -> str:
    """Now as ISO 8601 UTC (the format of :func:`trialbook.model.trial.utc_now`, without importing it)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
SUCCESS_RATE_COUNTS = "resolved / counted trials (finished, not cancelled; errors included in the denominator)"


@dataclass(slots=True)
class TrialFacts:
    """The few facts of one trial a summary needs (from a TrialRecord or an index row)."""

    trial_name: str
    task: str
    variant: str
    agent: str | None
    model: str | None
    attempt: int
    outcome: Outcome | None
    reward: float | None = None
    n_turns: int | None = None
    n_tool_calls: int | None = None
    total_tokens: int | None = None
    cost_usd: float | None = None
    aiu: float | None = None
    error: str | None = None
    duration_s: float | None = None

    @property
    def counted(self) -> bool:
        """True for a finished attempt (an outcome other than cancelled)."""
        return self.outcome is not None and self.outcome != Outcome.CANCELLED


@dataclass(slots=True)
class JobInfo:
    """Job-level identity and status that a summary reports beside the numbers."""

    job: str
    job_dir: str
    layout: str
    run_id: str | None = None
    experiment: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    status: str | None = None


def record_error(record: TrialRecord) -> str | None:
    """One line saying what went wrong: the exception, or the reason of an error outcome."""
    if record.exception is not None:
        first = (record.exception.message or "").strip().splitlines()
        return f"{record.exception.type}: {first[0] if first else ''}".rstrip(": ")[:500]
    if record.outcome in ERROR_OUTCOMES and record.reason:
        return record.reason[:500]
    return None


def record_total_tokens(record: TrialRecord) -> int | None:
    """Total tokens of a trial: reported total, else prompt + completion when both are known."""
    u = record.usage
    if u is None:
        return None
    if u.total_tokens is not None:
        return u.total_tokens
    if u.prompt_tokens is not None and u.completion_tokens is not None:
        return u.prompt_tokens + u.completion_tokens
    return None


def facts_from_record(record: TrialRecord) -> TrialFacts:
    """The summary facts of one trial record (any layout)."""
    u = record.usage
    return TrialFacts(
        trial_name=record.trial_name, task=record.task, variant=record.variant, agent=record.agent,
        model=record.model, attempt=record.attempt, outcome=record.outcome, reward=record.reward,
        n_turns=record.n_turns, n_tool_calls=record.n_tool_calls,
        total_tokens=record_total_tokens(record), cost_usd=u.cost_usd if u else None,
        aiu=u.aiu if u else None, error=record_error(record), duration_s=record.duration_s,
    )


def _mean(values: Iterable[float | int | None]) -> float | None:
    present = [v for v in values if v is not None]
    return mean(present)


def _sum(values: Iterable[float | int | None]) -> float | int | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _most_common(values: Iterable[str | None]) -> str | None:
    counts = Counter(v for v in values if v)
    return min(counts, key=lambda v: (-counts[v], v)) if counts else None


def _task_entry(task: str, facts: list[TrialFacts], ks: range) -> dict[str, Any]:
    counts = tally(facts)
    return {
        "task": task,
        "n_trials": counts.n_trials,
        "n_success": counts.n_success,
        "success_rate": counts.success_rate,
        "mean_reward": counts.mean_reward,
        "pass_at_k": counts.pass_at_k(ks) if counts.n_trials else {str(k): None for k in ks},
        "n_errors": counts.n_errors,
    }


def _variant_entry(variant: str, facts: list[TrialFacts], ks: range) -> dict[str, Any]:
    counted = [f for f in facts if f.counted]
    counts = tally(facts)
    by_task: dict[str, list[TrialFacts]] = defaultdict(list)
    for f in facts:
        by_task[f.task].append(f)
    return {
        "variant": variant,
        "agent": _most_common(f.agent for f in facts),
        "model": _most_common(f.model for f in facts),
        "n_trials": counts.n_trials,
        "n_success": counts.n_success,
        "success_rate": counts.success_rate,
        "mean_reward": counts.mean_reward,
        "pass_at_k": counts.pass_at_k(ks) if counts.per_task else {str(k): None for k in ks},
        "n_errors": counts.n_errors,
        "outcomes": counts.outcomes,
        "total_tokens": _sum(f.total_tokens for f in counted),
        "cost_usd": _sum(f.cost_usd for f in counted),
        "aiu": _sum(f.aiu for f in counted),
        "mean_turns": _mean(f.n_turns for f in counted),
        "mean_tool_calls": _mean(f.n_tool_calls for f in counted),
        "tasks": [_task_entry(t, by_task[t], ks) for t in sorted(by_task)],
    }


def build_summary(info: JobInfo, facts: Sequence[TrialFacts]) -> dict[str, Any]:
    """The summary.json content of one job (see the module docstring for what counts)."""
    counted = [f for f in facts if f.counted]
    counts = tally(facts)
    attempts = Counter((f.variant, f.task) for f in counted)
    k_max = max(attempts.values(), default=1)
    ks = range(1, k_max + 1)
    by_variant: dict[str, list[TrialFacts]] = defaultdict(list)
    for f in facts:
        by_variant[f.variant].append(f)
    summary = {
        "schema": SUMMARY_SCHEMA,
        "run_id": info.run_id or info.job,
        "experiment": info.experiment,
        "job": info.job,
        "job_dir": info.job_dir,
        "layout": info.layout,
        "started_at": info.started_at,
        "finished_at": info.finished_at,
        "status": info.status,
        "generated_at": _utc_now(),
        "n_variants": len(by_variant),
        "n_tasks": len({f.task for f in facts}),
        "n_trials": counts.n_trials,
        "n_trials_listed": len(facts),
        "n_unfinished": sum(f.outcome is None for f in facts),
        "n_cancelled": sum(f.outcome == Outcome.CANCELLED for f in facts),
        "failures": counts.n_errors,
        "overall_success_rate": counts.success_rate,
        "success_rate_counts": SUCCESS_RATE_COUNTS,
        "outcomes": counts.outcomes,
        "k_max": k_max,
        "total_tokens": _sum(f.total_tokens for f in counted),
        "cost_usd": _sum(f.cost_usd for f in counted),
        "aiu": _sum(f.aiu for f in counted),
        "variants": [_variant_entry(v, by_variant[v], ks) for v in sorted(by_variant)],
        "baseline_findings": [b.to_json() for b in baseline_findings(
            (f.task, f.variant, f.agent, f.outcome) for f in facts)],
        "analysis_dir": _analysis_dir(info.job_dir),
    }
    return summary


def _analysis_dir(job_dir: str | None) -> str | None:
    """The job's ``analysis/`` (spec 000) when job analysis has written it, else None."""
    if not job_dir:
        return None
    paths = JobPaths(Path(job_dir))
    return str(paths.analysis) if paths.analysis_config.is_file() else None


def job_info(job: JobView) -> JobInfo:
    """Identity of a job as its reader gave it (run_id and experiment from ``JobView.meta``)."""
    return JobInfo(
        job=job.name, job_dir=str(job.path), layout=job.layout,
        run_id=job.meta.get("run_id") or job.name, experiment=job.meta.get("experiment"),
        started_at=job.started_at, finished_at=job.finished_at, status=job.status,
    )


def summarize_job(job: JobView) -> dict[str, Any]:
    """summary.json content of a job read from its files (trajectories are not loaded)."""
    return build_summary(job_info(job), [facts_from_record(t.record) for t in job.trials])


def summary_dir(job_dir: Path) -> Path:
    """Where a job's summary files go by default: the job directory (its parent for a file job)."""
    return job_dir if job_dir.is_dir() else job_dir.parent


def write_summary(summary: dict[str, Any], out_dir: Path, *, validate: bool = True) -> tuple[Path, Path]:
    """Write ``summary.json`` and ``summary.md`` atomically into ``out_dir``; returns both paths.

    ``validate`` checks the summary against its schema first (:class:`~trialbook.model.job_files.JobSummary`,
    a pydantic model whose import costs more than the rest of ``trialbook show``; the command
    skips it, as :func:`build_summary`'s output is checked against the schema by the tests).
    """
    if validate:
        from trialbook.model.job_files import check_summary

        check_summary(summary)
    paths = JobPaths(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(paths.summary_json, summary)
    atomic_write_text(paths.summary_md, render_summary_md(summary))
    return paths.summary_json, paths.summary_md
