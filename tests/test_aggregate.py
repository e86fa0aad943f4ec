"""The job aggregate computed from hand-built trial records."""

from __future__ import annotations

import pytest

from trialbook.model.aggregate import aggregate
from trialbook.model.outcome import Outcome
from trialbook.model.trial import ExceptionInfo, TrialRecord
from trialbook.model.usage import Usage


def rec(task: str, variant: str, attempt: int, outcome: Outcome, reward: float | None = None,
        exc: str | None = None, usage: Usage | None = None, **rewards: float) -> TrialRecord:
    return TrialRecord(
        trial_name=f"{task}__{variant}__{attempt}", job="j", task=task, variant=variant, agent=variant,
        attempt=attempt, status="finished", outcome=outcome, reward=reward,
        rewards={"reward": reward, **rewards} if reward is not None else None,
        exception=ExceptionInfo(type=exc, message="x") if exc else None, usage=usage,
    )


def test_aggregate_counts_rates_and_pass_at_k() -> None:
    records = [
        rec("a", "v", 1, Outcome.RESOLVED, 1.0, usage=Usage(prompt_tokens=10, cost_usd=0.5)),
        rec("a", "v", 2, Outcome.UNRESOLVED, 0.0, usage=Usage(prompt_tokens=5)),
        rec("b", "v", 1, Outcome.UNRESOLVED, 0.0, partial=0.5),
        rec("b", "v", 2, Outcome.TIMEOUT, exc="AgentTimeoutError"),
        rec("a", "w", 1, Outcome.VERIFIER_ERROR, exc="RewardFileError"),
        rec("a", "w", 2, Outcome.CANCELLED),
    ]
    agg = aggregate(records, job="j", attempts=2, n_planned=8, status="completed")
    assert agg["n_trials"] == 6
    assert agg["outcomes"] == {"cancelled": 1, "resolved": 1, "timeout": 1, "unresolved": 2,
                               "verifier_error": 1}
    assert agg["errors_by_type"] == {"AgentTimeoutError": 1, "RewardFileError": 1}
    v = agg["variants"]["v"]
    assert v["n_trials"] == 4 and v["n_success"] == 1 and v["n_errors"] == 1
    assert v["success_rate"] == pytest.approx(0.25)
    assert v["mean_reward"] == pytest.approx(1 / 3)  # the timeout has no reward
    assert v["mean_rewards"]["partial"] == pytest.approx(0.5)
    # task a: n=2 c=1 -> pass@1 = .5, pass@2 = 1; task b: n=2 c=0 -> 0, 0
    assert v["pass_at_k"] == {"1": pytest.approx(0.25), "2": pytest.approx(0.5)}
    assert v["usage"]["prompt_tokens"] == 15 and v["usage"]["cost_usd"] == 0.5
    assert v["usage"]["completion_tokens"] is None
    w = agg["variants"]["w"]
    # the cancelled trial is not an attempt: task a has n=1 < 2
    assert w["n_trials"] == 1 and w["pass_at_k"] == {"1": 0.0, "2": None}
    assert w["outcomes"] == {"cancelled": 1, "verifier_error": 1}


def test_results_json_and_summary_json_count_from_one_reducer() -> None:
    """The same trials give the same counts in results.json (the runner's aggregate) and
    summary.json (the summary of any layout): both are built from ``tally``."""
    from trialbook.model.aggregate import aggregate, tally
    from trialbook.model.outcome import Outcome
    from trialbook.model.trial import TrialRecord
    from trialbook.results.summary import JobInfo, build_summary, facts_from_record

    outcomes = [Outcome.RESOLVED, Outcome.UNRESOLVED, Outcome.AGENT_ERROR, Outcome.CANCELLED, None,
                Outcome.RESOLVED, Outcome.TIMEOUT, Outcome.RESOLVED]
    records = [TrialRecord(trial_name=f"t{i}", job="j", task=f"task{i % 3}", variant="v", agent="a", attempt=1 + i // 3,
                           outcome=o, reward=None if o in (None, Outcome.CANCELLED) else float(o == Outcome.RESOLVED),
                           status="finished" if o else "running")
               for i, o in enumerate(outcomes)]
    counts = tally(records)
    assert (counts.n_trials, counts.n_success, counts.n_errors) == (6, 3, 2)
    assert counts.outcomes == {"agent_error": 1, "cancelled": 1, "resolved": 3, "timeout": 1, "unresolved": 1}
    results = aggregate(records, job="j", attempts=3)["variants"]["v"]
    summary = build_summary(JobInfo(job="j", job_dir="/j", layout="native"), [facts_from_record(r) for r in records])
    variant = summary["variants"][0]
    for key in ("n_trials", "n_success", "n_errors", "success_rate", "mean_reward", "outcomes"):
        assert results[key] == variant[key] == getattr(counts, key), key
    # pass@k: results.json reports k up to the configured attempts (3), summary.json up to the most
    # attempts a task has (2); where both report a k they agree.
    assert results["pass_at_k"] == counts.pass_at_k(range(1, 4)) and results["pass_at_k"]["3"] is None
    assert variant["pass_at_k"] == counts.pass_at_k(range(1, 3))
    assert summary["failures"] == counts.n_errors and summary["overall_success_rate"] == 0.5


def test_summary_and_results_files_have_a_printed_contract(tmp_path) -> None:
    """summary.json and results.json are validated against their models when built, and
    ``trialbook schema summary`` / ``job-results`` print those models for other tools."""
    import json
    import subprocess
    import sys

    import pytest
    from pydantic import ValidationError

    from trialbook.model.job_files import JobSummary, check_summary
    from trialbook.results.summary import JobInfo, build_summary

    summary = build_summary(JobInfo(job="j", job_dir="/j", layout="native"), [])
    JobSummary.model_validate(summary)
    with pytest.raises(ValidationError):
        check_summary({**summary, "n_trials": "many"})
    with pytest.raises(ValidationError):
        check_summary({**summary, "unexpected": 1})
    for name, field in (("summary", "overall_success_rate"), ("job-results", "errors_by_type")):
        res = subprocess.run([sys.executable, "-m", "trialbook.cli.main", "schema", name], capture_output=True,
                             text=True, check=True)
        assert field in json.loads(res.stdout)["properties"]
