"""The shapes of a job's ``summary.json`` and ``results.json``, as pydantic models.

:func:`trialbook.results.summary.build_summary` and :func:`trialbook.model.aggregate.aggregate`
build these files from one reducer (:func:`trialbook.model.aggregate.tally`); the models are
their contract: every file written is validated against them, and ``trialbook schema summary``
/ ``trialbook schema job-results`` print them for users' own tools.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from trialbook.model.usage import Usage

PassAtK = dict[str, float | None]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskSummary(_Strict):
    """One task of one variant."""

    task: str
    n_trials: int = Field(description="Attempts: trials with an outcome other than cancelled")
    n_success: int
    success_rate: float | None = Field(description="n_success / n_trials; null without attempts")
    mean_reward: float | None
    pass_at_k: PassAtK = Field(description="Unbiased pass@k by k; null where the task has fewer than k attempts")
    n_errors: int


class VariantSummary(_Strict):
    """One variant of the job, and its tasks."""

    variant: str
    agent: str | None
    model: str | None
    n_trials: int
    n_success: int
    success_rate: float | None
    mean_reward: float | None
    pass_at_k: PassAtK
    n_errors: int
    outcomes: dict[str, int] = Field(description="Every outcome, cancelled included")
    total_tokens: int | None
    cost_usd: float | None
    aiu: float | None
    mean_turns: float | None
    mean_tool_calls: float | None
    tasks: list[TaskSummary]


class BaselineFindingJson(_Strict):
    """What the oracle or nop baseline says of a task (an oracle that fails, a nop that passes)."""

    kind: str
    task: str
    variant: str
    n_trials: int
    n_resolved: int
    outcomes: dict[str, int]
    message: str


class JobSummary(_Strict):
    """``summary.json``: a job's numbers per variant and task, from any layout."""

    schema_: str = Field(alias="schema")
    run_id: str
    experiment: str | None
    job: str
    job_dir: str | None
    layout: str
    started_at: str | None
    finished_at: str | None
    status: str | None
    generated_at: str
    n_variants: int
    n_tasks: int
    n_trials: int = Field(description="Attempts: trials with an outcome other than cancelled")
    n_trials_listed: int = Field(description="Every trial found, unfinished and cancelled ones included")
    n_unfinished: int
    n_cancelled: int
    failures: int = Field(description="Attempts with an error outcome")
    overall_success_rate: float | None
    success_rate_counts: str
    outcomes: dict[str, int]
    k_max: int
    total_tokens: int | None
    cost_usd: float | None
    aiu: float | None
    variants: list[VariantSummary]
    baseline_findings: list[BaselineFindingJson]
    analysis_dir: str | None


class VariantResults(_Strict):
    """One variant in ``results.json``."""

    agent: str | None
    model: str | None
    n_trials: int
    n_tasks: int
    n_success: int
    n_errors: int
    success_rate: float | None
    mean_reward: float | None
    mean_rewards: dict[str, float | None] = Field(description="Mean of each reward key over the trials having it")
    outcomes: dict[str, int]
    pass_at_k: PassAtK = Field(description="k = 1..attempts of the config")
    pass_at_k_n: dict[str, dict[str, int]] = Field(description="Per task: n attempts, c resolved")
    usage: Usage


class JobResults(BaseModel):
    """``results.json`` (eval) / ``result.json`` (trajgen): the runner's aggregate of a job. SWE
    jobs add their own figures (benchmark type, SWE-bench counts) as further keys."""

    model_config = ConfigDict(extra="allow")

    schema_: str = Field(alias="schema")
    job: str
    kind: str
    status: str
    started_at: str | None
    finished_at: str | None
    n_trials_planned: int | None
    n_trials: int = Field(description="Trials with an outcome, cancelled included")
    n_errors: int
    outcomes: dict[str, int]
    errors_by_type: dict[str, int]
    success_rate_counts: str
    variants: dict[str, VariantResults]
    usage: Usage


def check_summary(data: dict[str, Any]) -> None:
    """Validate a summary before it is written (a broken contract is a bug, raised as such)."""
    JobSummary.model_validate(data)


def check_results(data: dict[str, Any]) -> None:
    """Validate a job aggregate before it is written."""
    JobResults.model_validate(data)
