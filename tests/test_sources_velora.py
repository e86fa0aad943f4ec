"""The velora reader against the VeloraHarness fixture: every EXPECTED fact, pass@k over Run1..N, ATIF, damage."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from math import comb
from pathlib import Path
from typing import Any

import pytest

from trialbook.model.aggregate import aggregate
from trialbook.model.atif_validate import validate_trajectory
from trialbook.model.outcome import Outcome
from trialbook.sources import detect_layout, get_reader, open_source
from trialbook.sources.base import JobView, TrialView

FIXTURE = Path(__file__).parent / "fixtures" / "velora"
ROOT = FIXTURE / "Trajectory_results"
EXPECTED: dict[str, Any] = json.loads((FIXTURE / "EXPECTED.json").read_text())
#: EXPECTED.json's outcome words -> trialbook outcomes ("no_eval": the evaluation never ran).
OUTCOMES = {"resolved": Outcome.RESOLVED, "unresolved": Outcome.UNRESOLVED,
            "no_eval": Outcome.VERIFIER_ERROR, "error": Outcome.AGENT_ERROR}


def trials_by_key(jobs: list[JobView]) -> dict[tuple[str, str, str, int], TrialView]:
    return {(j.name, t.record.task, t.record.variant, t.record.attempt): t for j in jobs for t in j.trials}


@pytest.fixture(scope="module")
def jobs() -> list[JobView]:
    return open_source(ROOT)


def test_detected_at_every_level() -> None:
    run = ROOT / "RCT" / "1769880766122899" / "Claude" / "Run1"
    for path in (FIXTURE, ROOT, ROOT / "RCT", run.parent.parent, run.parent, run):
        assert detect_layout(path) == "velora", path


def test_one_job_per_benchmark_and_exactly_the_expected_runs(jobs: list[JobView]) -> None:
    assert sorted(j.name for j in jobs) == sorted({r["benchmark"] for r in EXPECTED["runs"]})
    got = set(trials_by_key(jobs))
    want = {(r["benchmark"], r["instance_id"], r["model"], r["run"]) for r in EXPECTED["runs"]}
    assert got == want


@pytest.mark.parametrize("fact", EXPECTED["runs"], ids=lambda r: f"{r['benchmark']}-{r['model']}-Run{r['run']}")
def test_every_expected_fact(jobs: list[JobView], fact: dict[str, Any]) -> None:
    view = trials_by_key(jobs)[(fact["benchmark"], fact["instance_id"], fact["model"], fact["run"])]
    r = view.record
    assert r.job == fact["benchmark"] and r.extra["benchmark"] == fact["benchmark"]
    assert r.task == fact["instance_id"]
    assert r.variant == fact["model"] and r.extra["model_key"] == fact["model"]
    assert r.model == fact["model_name"]
    assert r.attempt == fact["run"] and r.status == "finished"
    assert r.outcome == OUTCOMES[fact["outcome"]]
    if fact["resolved"] is None:
        assert r.reward is None and r.rewards is None
        assert "not evaluated" in (r.reason or "")
    elif fact["outcome"] == "error":
        assert r.reason == fact["error"]
        assert r.reward is None  # an agent error is counted as an error, not graded by its report ...
        assert r.extra["report_resolved"] is fact["resolved"]  # ... whose verdict is kept
    else:
        assert r.reward == (1.0 if fact["resolved"] else 0.0)
        assert r.rewards == {"reward": r.reward}
        assert r.extra["report_resolved"] is fact["resolved"]
    assert r.extra["has_eval_outputs"] is fact["has_eval_outputs"]
    assert r.usage is not None
    assert r.usage.prompt_tokens == fact["prompt_tokens"]
    assert r.usage.completion_tokens == fact["completion_tokens"]
    assert r.usage.total_tokens == fact["prompt_tokens"] + fact["completion_tokens"]
    assert r.usage.cost_usd == pytest.approx(fact["accumulated_cost"])
    assert r.usage.n_llm_calls == fact["n_llm_calls"]
    assert r.extra["n_history_events"] == fact["n_history_events"]
    assert r.extra["history_form"] == "flat"
    assert r.n_turns == fact["n_llm_calls"] and r.n_tool_calls == fact["n_llm_calls"]
    if fact["outcome"] == "unresolved":
        assert r.reason and "FAIL_TO_PASS: 1 of 1 failing" in r.reason


def _unbiased(n: int, c: int, k: int) -> float:
    return 1.0 if n - c < k else 1.0 - comb(n - c, k) / comb(n, k)


def test_pass_at_k_over_runs(jobs: list[JobView]) -> None:
    for job in jobs:
        agg = aggregate(job.records, job=job.name, attempts=4)
        for variant, stats in agg["variants"].items():
            runs = [f for f in EXPECTED["runs"] if f["benchmark"] == job.name and f["model"] == variant]
            tasks = sorted({f["instance_id"] for f in runs})
            for k in (1, 2, 3):
                want = sum(_unbiased(sum(1 for f in runs if f["instance_id"] == t),
                                     sum(1 for f in runs if f["instance_id"] == t and f["outcome"] == "resolved"), k)
                           for t in tasks) / len(tasks)
                assert stats["pass_at_k"][str(k)] == pytest.approx(want), (job.name, variant, k)
            assert stats["pass_at_k"]["4"] is None  # only 3 runs: pass@4 is undefined, not 0
    rct = next(j for j in jobs if j.name == "RCT")
    gemini = aggregate(rct.records, job="RCT")["variants"]["Gemini"]["pass_at_k"]
    assert sorted(gemini) == ["1", "2", "3"]  # k up to the highest Run number
    assert gemini["1"] == pytest.approx(2 / 3) and gemini["2"] == 1.0  # Run1 ok, Run2 failed, Run3 ok


def test_atif_from_every_run_is_valid_and_linked(jobs: list[JobView]) -> None:
    for view in trials_by_key(jobs).values():
        fact = next(f for f in EXPECTED["runs"] if (f["benchmark"], f["instance_id"], f["model"], f["run"])
                    == (view.record.job, view.record.task, view.record.variant, view.record.attempt))
        trajectory = view.trajectory()
        assert trajectory is not None
        data = trajectory.model_dump(mode="json", exclude_none=True)
        assert validate_trajectory(data) == []
        assert trajectory.steps[0].source == "user"
        agent = [s for s in trajectory.steps if s.source == "agent"]
        assert len(agent) == fact["n_llm_calls"]
        for step in agent:
            assert step.tool_calls and len(step.tool_calls) == 1
            call = step.tool_calls[0]
            assert call.tool_call_id.startswith("toolu_") and isinstance(call.arguments, dict)
            assert call.function_name in ("execute_bash", "finish")
            if call.function_name == "execute_bash":
                assert isinstance(call.arguments["command"], str)
                results = step.observation.results
                assert [r.source_call_id for r in results] == [call.tool_call_id]
                assert results[0].extra["exit_code"] in (0, 1)
        fm = trajectory.final_metrics
        assert fm.total_prompt_tokens == fact["prompt_tokens"]
        assert fm.total_completion_tokens == fact["completion_tokens"]
        assert fm.total_cost_usd == pytest.approx(fact["accumulated_cost"])


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    dest = tmp_path / "Trajectory_results"
    shutil.copytree(ROOT, dest)
    return dest


def _run(tree: Path, bench: str, model: str, run: int) -> Path:
    inst = "1769880766122899" if bench == "RCT" else "psf__requests_2.4.0_2.4.1"
    return tree / bench / inst / model / f"Run{run}"


def test_truncated_last_line_warns_and_reads_earlier_lines(tree: Path) -> None:
    run = _run(tree, "RCT", "Gemini", 1)
    line = (run / "output.jsonl").read_bytes()
    other = json.loads(line)
    other["instance_id"] = "some-other-instance"
    (run / "output.jsonl").write_bytes(line + json.dumps(other).encode()[:500])  # 2nd line cut, no newline
    with pytest.warns(UserWarning, match="truncated"):
        jobs = get_reader("velora").read(run)
    view = jobs[0].trials[0]
    assert view.record.outcome == Outcome.RESOLVED and view.record.usage.prompt_tokens == 963
    assert view.trajectory() is not None


def test_single_truncated_line_is_an_infra_error_not_dropped(tree: Path) -> None:
    run = _run(tree, "RCT", "Gemini", 2)
    data = (run / "output.jsonl").read_bytes().rstrip(b"\n")
    (run / "output.jsonl").write_bytes(data[: len(data) // 2])
    with pytest.warns(UserWarning, match="truncated"):
        trials = trials_by_key(get_reader("velora").read(tree))
    record = trials[("RCT", "1769880766122899", "Gemini", 2)].record
    assert record.outcome == Outcome.INFRA_ERROR and "no complete line" in record.reason
    assert len(trials) == len(EXPECTED["runs"])


def test_missing_and_unreadable_files(tree: Path) -> None:
    (_run(tree, "SWE-hard", "Claude", 1) / "output.jsonl").unlink()
    (_run(tree, "SWE-hard", "Claude", 2) / "metadata.json").write_text("{not json")
    report = _run(tree, "SWE-hard", "Claude", 3) / "eval_outputs"
    (report / "psf__requests_2.4.0_2.4.1" / "report.json").write_text("[1, 2")
    trials = trials_by_key(get_reader("velora").read(tree))
    assert len(trials) == len(EXPECTED["runs"])
    missing = trials[("SWE-hard", "psf__requests_2.4.0_2.4.1", "Claude", 1)]
    assert missing.record.outcome == Outcome.INFRA_ERROR and "output.jsonl missing" in missing.record.reason
    assert missing.trajectory() is None
    bad_meta = trials[("SWE-hard", "psf__requests_2.4.0_2.4.1", "Claude", 2)].record
    assert bad_meta.outcome == Outcome.UNRESOLVED and "invalid JSON" in bad_meta.extra["problems"][0]
    bad_report = trials[("SWE-hard", "psf__requests_2.4.0_2.4.1", "Claude", 3)].record
    assert bad_report.outcome == Outcome.VERIFIER_ERROR and "unreadable report" in bad_report.reason


def test_empty_patch_without_report_is_unresolved(tree: Path) -> None:
    run = _run(tree, "RCT", "Claude", 3)  # the run whose evaluation never ran
    line = json.loads((run / "output.jsonl").read_text())
    line["test_result"]["git_patch"] = ""
    (run / "output.jsonl").write_text(json.dumps(line) + "\n")
    record = trials_by_key(get_reader("velora").read(run))[("RCT", "1769880766122899", "Claude", 3)].record
    assert record.outcome == Outcome.UNRESOLVED and record.reward == 0.0 and "empty patch" in record.reason


def test_error_classification(tree: Path) -> None:
    run = _run(tree, "SWE-hard", "Gemini", 2)
    for error, outcome in (("AgentRuntimeTimeoutError: Runtime timed out", Outcome.TIMEOUT),
                           ("AgentRuntimeDisconnectedError: lost the sandbox", Outcome.INFRA_ERROR),
                           ("LLMMalformedActionError: bad action", Outcome.AGENT_ERROR)):
        line = json.loads((run / "output.jsonl").read_text())
        line["error"] = error
        (run / "output.jsonl").write_text(json.dumps(line) + "\n")
        record = get_reader("velora").read(run)[0].trials[0].record
        assert (record.outcome, record.reason) == (outcome, error)


def test_symlinks_out_of_the_tree_are_not_followed(tree: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    shutil.copytree(_run(tree, "RCT", "Gemini", 1), outside / "Run9")
    model_dir = _run(tree, "RCT", "Gemini", 1).parent
    os.symlink(outside / "Run9", model_dir / "Run9")
    run = _run(tree, "RCT", "Gemini", 3)
    (run / "output.jsonl").unlink()
    os.symlink(outside / "Run9" / "output.jsonl", run / "output.jsonl")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trials = trials_by_key(get_reader("velora").read(tree))
    assert ("RCT", "1769880766122899", "Gemini", 9) not in trials
    assert any("outside" in str(w.message) for w in caught)
    record = trials[("RCT", "1769880766122899", "Gemini", 3)].record
    assert record.outcome == Outcome.INFRA_ERROR and "outside the results tree" in record.reason


def test_renamed_root_is_still_velora(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "RCT", tmp_path / "renamed" / "RCT")
    assert detect_layout(tmp_path / "renamed") == "velora"
    assert len(open_source(tmp_path / "renamed")[0].trials) == 6


def test_trial_files_watch_the_reports() -> None:
    run = ROOT / "SWE-hard" / "psf__requests_2.4.0_2.4.1" / "Gemini" / "Run1"
    files = get_reader("velora").trial_files(run)
    assert run / "output.jsonl" in files and run / "eval_outputs" / "psf__requests_2.4.0_2.4.1" / "report.json" in files


def test_detectors_of_the_swe_layouts_never_overlap() -> None:
    """Each fixture folder is recognised by at most one of these readers, so detection order cannot misread it."""
    fixtures = Path(__file__).parent / "fixtures"
    folders = [p for top in sorted(fixtures.iterdir()) if top.is_dir()
               for p in (top, *sorted(x for x in top.iterdir() if x.is_dir()))]
    names = ("velora", "openhands", "miniswe", "swebench")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for folder in folders:
            hits = [n for n in names if get_reader(n).detect(folder)]
            assert len(hits) <= 1, (folder, hits)
    assert get_reader("swebench").detect(fixtures / "miniswe" / "v1") is False  # its logs belong to the batch
    assert get_reader("velora").detect(fixtures / "openhands" / "outputs") is False


_JUNK: list[Any] = [None, 1, -5, 2.5, "x", [], {}, [1, "a"], {"a": 1}, True, "2026-01-01T00:00:00"]


def _confuse(value: Any, rng: Any, rate: float) -> Any:
    if isinstance(value, dict):
        return {k: rng.choice(_JUNK) if rng.random() < rate else _confuse(v, rng, rate) for k, v in value.items()}
    if isinstance(value, list):
        return [rng.choice(_JUNK) if rng.random() < rate else _confuse(v, rng, rate) for v in value]
    return value


@pytest.mark.parametrize("seed", range(6))
def test_wrong_json_types_never_crash_the_swe_readers(tmp_path: Path, seed: int) -> None:
    """Any JSON value replaced by one of the wrong type: listing and ATIF either work or raise our own error."""
    import random

    from trialbook.errors import TrialbookError

    rng = random.Random(seed)
    fixtures = Path(__file__).parent / "fixtures"
    sources = {"velora": ROOT, "openhands": fixtures / "openhands" / "outputs", "miniswe": fixtures / "miniswe",
               "swebench": fixtures / "swebench"}
    for layout, src in sources.items():
        dest = tmp_path / layout
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns("sample_repo"))
        for path in sorted([*dest.rglob("*.json"), *dest.rglob("*.jsonl")]):
            if rng.random() < 0.5:
                continue
            lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()] \
                if path.suffix == ".jsonl" else [json.loads(path.read_text())]
            path.write_text("\n".join(json.dumps(_confuse(x, rng, 0.1)) for x in lines) + "\n")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                jobs = get_reader(layout).read(dest)
            except TrialbookError:
                continue
            for view in (t for j in jobs for t in j.trials):
                try:
                    trajectory = view.trajectory()
                except TrialbookError:
                    continue
                if trajectory is not None:
                    assert validate_trajectory(trajectory.model_dump(mode="json", exclude_none=True)) == []


def test_llm_completions_are_counted_and_give_the_usage_output_jsonl_lacks(tree: Path) -> None:
    facts = {(r["benchmark"], r["model"], r["run"]): r for r in EXPECTED["runs"]}
    for view in (t for j in open_source(tree) for t in j.trials):
        fact = facts[(view.record.job, view.record.variant, view.record.attempt)]
        assert view.record.extra["n_llm_completions"] == fact["n_llm_calls"]
    run = _run(tree, "SWE-hard", "Gemini", 1)
    line = json.loads((run / "output.jsonl").read_text())
    line["metrics"] = None
    for event in line["history"]:
        event.pop("llm_metrics", None)
    (run / "output.jsonl").write_text(json.dumps(line) + "\n")
    view = trials_by_key(open_source(tree))[("SWE-hard", "psf__requests_2.4.0_2.4.1", "Gemini", 1)]
    fact = facts[("SWE-hard", "Gemini", 1)]
    usage = view.record.usage
    assert usage is not None and usage.n_llm_calls == fact["n_llm_calls"]
    assert (usage.prompt_tokens, usage.completion_tokens) == (fact["prompt_tokens"], fact["completion_tokens"])
