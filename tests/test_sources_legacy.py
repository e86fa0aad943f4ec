"""The legacy copilot-experiments reader (spec 004) against its fixture: every EXPECTED fact."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from trialbook.model.aggregate import aggregate
from trialbook.model.outcome import Outcome
from trialbook.sources import detect_layout, open_source
from trialbook.sources.base import JobView

LEGACY = Path(__file__).parent / "fixtures" / "legacy"
EXPECTED = json.loads((LEGACY / "EXPECTED.json").read_text())
RUN = LEGACY / "results" / "copilot-baseline" / "run_2025-11-03T10-00-00"


def the_run(path: Path) -> JobView:
    jobs = open_source(path)
    assert len(jobs) == 1
    return jobs[0]


@pytest.mark.parametrize("path", [LEGACY, LEGACY / "results", RUN.parent, RUN])
def test_detected_at_every_level(path: Path) -> None:
    assert detect_layout(path) == "legacy"
    job = the_run(path)
    assert job.name == RUN.name and job.path == RUN
    assert len(job.trials) == len(EXPECTED["trials"])


def test_every_trial_fact() -> None:
    job = the_run(LEGACY)
    run = json.loads((RUN / "run.json").read_text())
    assert (job.started_at, job.finished_at, job.status) == (run["started_at"], run["finished_at"], "finished")
    assert job.meta["experiment"] == "copilot-baseline"
    index = {(r.variant, r.task, r.attempt): (t, r) for t in job.trials for r in [t.record]}
    assert len(index) == len(EXPECTED["trials"])
    for e in EXPECTED["trials"]:
        view, r = index[(e["variant"], e["task"], e["trial"])]
        where = (e["variant"], e["task"], e["trial"])
        assert r.extra["experiment"] == e["experiment"] and r.extra["run"] == e["run"] == r.job, where
        assert r.model == e["model"] and r.agent == "copilot-cli", where
        assert r.success is e["resolved"] and r.outcome == Outcome(e["outcome"]), where
        assert r.reward == e["reward"] and r.rewards == {"reward": e["reward"]}, where
        assert (r.n_turns, r.n_tool_calls) == (e["turns"], e["tool_calls"]), where
        assert r.usage.total_tokens == e["total_tokens"] and r.usage.aiu == e["aiu"], where
        assert r.usage.prompt_tokens + r.usage.completion_tokens == e["total_tokens"], where
        assert r.reason == e["error"], where
        if e["error"]:
            kind, message = e["error"].split(":", 1)
            assert (r.exception.type, r.exception.message) == (kind, message.strip()), where
        else:
            assert r.exception is None, where
        assert ("analysis" in r.extra) is e["has_analysis"], where
        assert view.path == RUN / e["variant"] / e["task"] / "trials" / f"{e['trial']:03d}", where
        assert r.trial_name == f"{e['task']}__{e['variant']}__{e['trial']:03d}", where
        assert view.trajectory() is None  # legacy runs keep no trajectory here


def test_one_trial_dir() -> None:
    trial = RUN / "gpt-5-default" / "fix-add" / "trials" / "002"
    assert detect_layout(trial) == "legacy"
    job = the_run(trial)
    assert [t.path for t in job.trials] == [trial]
    assert job.trials[0].record.outcome == Outcome.TIMEOUT and job.trials[0].record.attempt == 2


def test_aggregate_counts_for_a_legacy_run() -> None:
    job = the_run(LEGACY)
    variants = aggregate(job.records, job=job.name)["variants"]
    for name in ("gpt-5-default", "claude-sonnet-4-default"):
        rows = [e for e in EXPECTED["trials"] if e["variant"] == name]
        v = variants[name]
        assert v["n_trials"] == len(rows) and v["n_success"] == sum(e["resolved"] for e in rows)
        assert v["n_errors"] == sum(e["outcome"] == "timeout" for e in rows)
        assert v["usage"]["total_tokens"] == sum(e["total_tokens"] for e in rows)
        assert v["usage"]["aiu"] == pytest.approx(sum(e["aiu"] for e in rows))


def test_missing_or_broken_files(tmp_path: Path) -> None:
    root = tmp_path / "legacy"
    shutil.copytree(LEGACY, root)
    run = root / "results" / "copilot-baseline" / "run_2025-11-03T10-00-00"
    (run / "gpt-5-default" / "hello-file" / "trials" / "001" / "metrics.json").unlink()
    (run / "gpt-5-default" / "hello-file" / "trials" / "002" / "metrics.json").write_text("{not json")
    (run / "claude-sonnet-4-default" / "fix-add" / "trials" / "003").mkdir()  # empty trial dir
    (run / "run.json").unlink()
    job = the_run(root)
    assert job.status is None and job.meta["experiment"] == "copilot-baseline"
    recs = {(r.variant, r.task, r.attempt): r for r in job.records}
    assert len(recs) == len(EXPECTED["trials"]) + 1
    missing = recs[("gpt-5-default", "hello-file", 1)]
    assert missing.outcome == Outcome.INFRA_ERROR and "metrics.json" in missing.reason and "not found" in missing.reason
    broken = recs[("gpt-5-default", "hello-file", 2)]
    assert broken.outcome == Outcome.INFRA_ERROR and "invalid JSON" in broken.reason
    empty = recs[("claude-sonnet-4-default", "fix-add", 3)]
    assert empty.outcome == Outcome.INFRA_ERROR and empty.agent == "unknown"
    assert recs[("gpt-5-default", "fix-add", 2)].outcome == Outcome.TIMEOUT


def test_copilot_events_back_the_trajectory(tmp_path: Path) -> None:
    root = tmp_path / "legacy"
    shutil.copytree(LEGACY, root)
    trial = root / "results" / "copilot-baseline" / "run_2025-11-03T10-00-00" / "gpt-5-default" / "fix-add" / "trials" / "001"
    events = next((Path(__file__).parent / "fixtures" / "pier_copilot").rglob("fix-add__cp7Gx4d/**/events.jsonl"))
    (trial / "session").mkdir()
    shutil.copy(events, trial / "session" / "events.jsonl")
    view = next(t for t in the_run(root).trials if t.path == trial)
    traj = view.trajectory()
    assert traj is not None and traj.agent.name == "copilot-cli" and traj.agent.model_name == "gpt-5"
    assert sum(len(s.tool_calls or ()) for s in traj.steps) == 2


def test_listing_hooks_match_read() -> None:
    from trialbook.sources import get_reader

    reader = get_reader("legacy")
    job = the_run(LEGACY)
    assert reader.job_dirs(LEGACY) == [RUN] == reader.job_dirs(job.trials[0].path)
    assert reader.trial_dirs(RUN) == sorted(t.path for t in job.trials)
