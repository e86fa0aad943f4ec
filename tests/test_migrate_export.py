"""``trialbook migrate`` (old OpenHands layout -> Trajectory_results) and ``export --layout velora`` (round trip)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from trialbook.app.pipeline import run_block
from trialbook.cli.demo import create_demo_block
from trialbook.cli.main import app
from trialbook.exports.migrate import migrate
from trialbook.exports.velora import export_job
from trialbook.jsonio import write_json
from trialbook.model.aggregate import aggregate
from trialbook.model.atif_validate import validate_trajectory
from trialbook.model.outcome import Outcome
from trialbook.model.trajectory import dump_trajectory
from trialbook.sources import detect_layout, get_reader, open_source
from trialbook.sources.base import JobView
from trialbook.sources.velora import EXPORT_KEY, MIGRATION_KEY, OverwriteRefusedError, model_key

FIXTURES = Path(__file__).parent / "fixtures"
OLD = FIXTURES / "openhands" / "outputs"
TRIALBOOK = [sys.executable, "-m", "trialbook.cli.main"]


def tree_hash(root: Path) -> str:
    """Hash of every path, file content and mtime under ``root`` (a change anywhere changes it)."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(p.read_bytes())
            h.update(str(p.stat().st_mtime_ns).encode())
    return h.hexdigest()


@pytest.mark.parametrize(("model", "key"), [
    ("gemini-3-pro-preview", "Gemini"), ("gemini/gemini-3-pro-preview", "Gemini"),
    ("claude-sonnet-4-20250514", "Claude"), ("anthropic/claude-sonnet-4-20250514", "Claude"),
    ("bedrock/anthropic.claude-3-5-sonnet", "Claude"), ("gpt-5.2-codex", "GPT"), ("azure/gpt-4o", "GPT"),
    ("openai/o3", "o3"), ("Qwen/Qwen3 Coder:480b", "Qwen3-Coder-480b"), ("///", "unknown"),
])
def test_model_key(model: str, key: str) -> None:
    assert model_key(model) == key


@pytest.fixture()
def old(tmp_path: Path) -> Path:
    dest = tmp_path / "old" / "outputs"
    shutil.copytree(OLD, dest)
    return dest


def test_dry_run_writes_nothing(old: Path, tmp_path: Path) -> None:
    before = tree_hash(old)
    plan = migrate(old, tmp_path / "new", dry_run=True)
    assert not (tmp_path / "new").exists()
    assert tree_hash(old) == before
    assert len(plan.runs) == 4 and {r.model_key for r in plan.runs} == {"Claude"}
    assert {r.benchmark for r in plan.runs} == {"SWE-hard"}  # detect_benchmark_type("swe_hard_multi")
    assert {(r.instance_id, r.run) for r in plan.runs} == {
        ("psf__requests_2.4.0_2.4.1", 1), ("psf__requests_2.4.0_2.4.1", 2),
        ("iterative__dvc_0.92.0_0.92.1", 1), ("iterative__dvc_0.92.0_0.92.1", 2)}


def test_migrate_copies_and_reads_back_the_same(old: Path, tmp_path: Path) -> None:
    before = tree_hash(old)
    new = tmp_path / "new"
    plan = migrate(old, new)
    assert tree_hash(old) == before  # the source is only read
    assert detect_layout(new) == "velora"
    source = {(t.record.task, t.record.attempt): t for j in get_reader("openhands").read(old) for t in j.trials}
    migrated = {(t.record.task, t.record.attempt): t for j in open_source(new) for t in j.trials}
    assert set(migrated) == set(source)
    for key, view in migrated.items():
        a, b = source[key].record, view.record
        assert (b.job, b.variant, b.model) == ("SWE-hard", "Claude", a.model)
        assert (b.outcome, b.reward, b.usage, b.n_turns, b.n_tool_calls) == (
            a.outcome, a.reward, a.usage, a.n_turns, a.n_tool_calls)
        assert b.extra["max_iterations"] == 100
        steps_a, steps_b = source[key].trajectory().steps, view.trajectory().steps
        assert [s.model_dump(exclude={"step_id"}) for s in steps_a] == [s.model_dump(exclude={"step_id"})
                                                                        for s in steps_b]
    for run in plan.runs:
        meta = json.loads((run.target / "metadata.json").read_text())
        info = meta[MIGRATION_KEY]
        assert (info["max_iterations"], info["version"], info["run"]) == (100, "v1.1.0-no-hint", run.run)
        assert info["source_run_folder"] == str(run.source.resolve()) and info["agent"] == "CodeActAgent"
        assert meta["llm_config"]["model"] == "anthropic/claude-sonnet-4-20250514"
        original = [ln for ln in (run.source / "output.jsonl").read_bytes().split(b"\n")
                    if json.loads(ln or b"{}").get("instance_id") == run.instance_id]
        assert (run.target / "output.jsonl").read_bytes() == original[0] + b"\n"
        assert set(json.loads((run.target / "eval_outputs" / "report.json").read_text())) == {run.instance_id}
        assert (run.target / "eval_outputs" / run.instance_id / "test_output.txt").read_bytes() == (
            run.source / "eval_outputs" / run.instance_id / "test_output.txt").read_bytes()


def test_migrate_refuses_to_overwrite(old: Path, tmp_path: Path) -> None:
    new = tmp_path / "new"
    target = new / "Trajectory_results" / "SWE-hard" / "psf__requests_2.4.0_2.4.1" / "Claude" / "Run2"
    target.mkdir(parents=True)
    (target / "keep.txt").write_text("mine")
    before = tree_hash(new)
    with pytest.raises(OverwriteRefusedError, match="never overwrites"):
        migrate(old, new)
    assert tree_hash(new) == before  # nothing written, not even the runs that did not collide


def test_two_sources_mapping_to_one_run_dir_are_refused(old: Path, tmp_path: Path) -> None:
    agent_dir = old / "swe_hard_multi-train" / "CodeActAgent"
    src = agent_dir / "claude-sonnet-4-20250514_maxiter_100_v1.1.0-no-hint-run_1"
    twin = agent_dir / "claude-3-opus_maxiter_50_v1.0-run_1"
    shutil.copytree(src, twin)
    meta = json.loads((twin / "metadata.json").read_text())
    meta["llm_config"]["model"] = "anthropic/claude-3-opus"
    (twin / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(OverwriteRefusedError, match="both map"):
        migrate(old, tmp_path / "new", dry_run=True)


def test_benchmark_and_unknown_model_from_the_old_names(old: Path, tmp_path: Path) -> None:
    moved = old.parent / "lay" / "expensify_swelancer-test"
    shutil.copytree(old / "swe_hard_multi-train", moved)
    for meta_path in moved.rglob("metadata.json"):
        meta = json.loads(meta_path.read_text())
        del meta["dataset"]
        meta["llm_config"]["model"] = "openrouter/qwen/qwen3-coder"
        meta_path.write_text(json.dumps(meta))
    plan = migrate(moved.parent, tmp_path / "new", dry_run=True)
    assert {(r.benchmark, r.model_key) for r in plan.runs} == {("RCT", "qwen3-coder")}


def test_migrate_cli(old: Path, tmp_path: Path) -> None:
    new = tmp_path / "new"
    dry = CliRunner().invoke(app, ["migrate", str(old), str(new), "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    plan = json.loads(dry.output)
    assert plan["dry_run"] is True and plan["n_runs"] == 4 and not new.exists()
    done = subprocess.run([*TRIALBOOK, "migrate", str(old), str(new), "--json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["n_runs"] == 4 and new.is_dir()
    again = subprocess.run([*TRIALBOOK, "migrate", str(old), str(new)], capture_output=True, text=True)
    assert again.returncode == 4 and "never overwrites" in again.stderr


@pytest.fixture(scope="module")
def demo_job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = create_demo_block(tmp_path_factory.mktemp("demo") / "block")
    return run_block(root / "config.yaml", "demo").outcome.job_dir


def _identity(jobs: list[JobView]) -> set[tuple[Any, ...]]:
    return {(t.record.task, t.record.variant, t.record.attempt, t.record.outcome, t.record.reason)
            for j in jobs for t in j.trials}


def _pass_at_k(jobs: list[JobView]) -> dict[str, Any]:
    records = [r for j in jobs for r in j.records]
    return {v: s["pass_at_k"] for v, s in aggregate(records, job="x")["variants"].items()}


def test_export_round_trip(demo_job: Path, tmp_path: Path) -> None:
    native = open_source(demo_job)
    before = tree_hash(demo_job)
    result = export_job(demo_job, tmp_path / "out")
    assert tree_hash(demo_job) == before
    # Harbor-format tasks are not SWE-bench: their benchmark folder is the dataset's name, never SWE-hard
    assert result.benchmark == "tasks" and len(result.written) == 30 and not result.skipped
    assert detect_layout(tmp_path / "out") == "velora"
    back = open_source(tmp_path / "out")
    assert [j.name for j in back] == ["tasks"]
    assert _identity(back) == _identity(native)
    assert {o for *_, o, _ in _identity(back)} == {Outcome.RESOLVED, Outcome.UNRESOLVED, Outcome.VERIFIER_ERROR}
    assert _pass_at_k(back) == _pass_at_k(native)
    assert _pass_at_k(native)["oracle"]["1"] == pytest.approx(0.8)  # 4 of 5 tasks solvable; broken-verifier errs
    # the files alone (without the copied record) give the same outcomes and pass@k
    for meta_path in (tmp_path / "out").rglob("metadata.json"):
        meta = json.loads(meta_path.read_text())
        assert meta[EXPORT_KEY]["task"] == meta_path.parent.parent.parent.name
        del meta[EXPORT_KEY]
        meta_path.write_text(json.dumps(meta))
    derived = open_source(tmp_path / "out")
    assert {k[:4] for k in _identity(derived)} == {k[:4] for k in _identity(native)}
    assert _pass_at_k(derived) == _pass_at_k(native)
    with pytest.raises(OverwriteRefusedError):
        export_job(demo_job, tmp_path / "out")


def test_export_error_outcomes_and_trajectory(demo_job: Path, tmp_path: Path) -> None:
    job = tmp_path / "job"
    shutil.copytree(demo_job, job)
    trajectory = open_source(FIXTURES / "velora" / "Trajectory_results" / "RCT")[0].trials[0].trajectory()
    changes = {"hello-world__oracle__1": Outcome.TIMEOUT, "hello-world__oracle__2": Outcome.AGENT_ERROR,
               "hello-world__oracle__3": Outcome.INFRA_ERROR}
    for name, outcome in changes.items():
        record = json.loads((job / name / "trial.json").read_text())
        record.update(outcome=str(outcome), reason=f"made {outcome}", reward=None, rewards=None)
        write_json(job / name / "trial.json", record)
    dump_trajectory(trajectory, job / "count-words__oracle__1" / "agent" / "trajectory.json")
    export_job(job, tmp_path / "out")
    back = {t.record.trial_name: t for j in open_source(tmp_path / "out") for t in j.trials}
    for name, outcome in changes.items():
        task, variant, attempt = name.split("__")
        view = back[f"{task}__{variant}__{attempt}"]
        assert view.record.outcome == outcome and view.record.extra["derived_outcome"] == str(outcome)
        line = json.loads((view.path / "output.jsonl").read_text())
        assert line["error"].endswith(f"made {outcome}")
    view = back["count-words__oracle__1"]
    again = view.trajectory()
    assert validate_trajectory(again.model_dump(mode="json", exclude_none=True)) == []

    def shape(t: Any) -> list[Any]:
        return [(s.source, s.message, [(c.tool_call_id, c.function_name, c.arguments) for c in s.tool_calls or []],
                 [(r.source_call_id, r.content) for r in (s.observation.results if s.observation else [])],
                 s.metrics.prompt_tokens if s.metrics else None, s.metrics.cost_usd if s.metrics else None)
                for s in t.steps]

    assert shape(again) == shape(trajectory)
    assert again.final_metrics.total_prompt_tokens == trajectory.final_metrics.total_prompt_tokens


def test_export_cli_by_job_name(demo_job: Path, tmp_path: Path) -> None:
    block = demo_job.parent.parent.parent
    out = tmp_path / "cli-out"
    done = subprocess.run([*TRIALBOOK, "export", "demo", "--layout", "velora", "--to", str(out), "--json",
                           "--name-by", "model", "--benchmark", "Lite"], capture_output=True, text=True, cwd=block)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["n_written"] == 30 and result["benchmark"] == "Lite"
    assert (out / "Trajectory_results" / "Lite" / "hello-world" / "oracle" / "Run1" / "output.jsonl").is_file()
    bad = CliRunner().invoke(app, ["export", str(demo_job), "--to", str(out), "--layout", "harbor"])
    assert bad.exit_code == 2 and "unknown export layout" in bad.output
