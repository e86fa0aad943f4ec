"""The VeloraHarness layout as a run output: a real SWE job (mini-swe-agent over LiteLLM to a scripted
server, commands and tests in bubblewrap) writes Trajectory_results/ trial by trial, the velora reader
reads it back to the native numbers, and ``trialbook export`` writes the very same files."""

from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import make_block, requires_bwrap
from scripted_llm_server import SUBMIT, ScriptedLLMServer, tool_call

from trialbook.app.pipeline import run_block
from trialbook.app.swe_demo import build_example_repo, example_dir
from trialbook.block.init import init_block
from trialbook.errors import ConfigError
from trialbook.exports.velora import export_job
from trialbook.jsonio import read_json
from trialbook.model.aggregate import aggregate
from trialbook.run.llm_log import read_litellm_log
from trialbook.sources import get_reader, open_source
from trialbook.sources.velora import EXPORT_KEY

pytestmark = requires_bwrap

KEY_ENV = "TEST_OPENAI_API_KEY"
ROWS = {r["instance_id"]: r for r in map(json.loads, example_dir().joinpath("instances.jsonl").read_text().splitlines())}
CLAMP = "calc__clamp-1"
MODEL = "openai/claude-sonnet-4-20250514"  # the VeloraHarness model key of this one is Claude
APPLY = f"cd /app && git apply <<'PATCH_EOF'\n{ROWS[CLAMP]['patch']}PATCH_EOF\ngit diff --stat"


def swe_block(tmp_path: Path, server: ScriptedLLMServer, **output: Any) -> Path:
    root = tmp_path / "block"
    root.mkdir()
    build_example_repo(root / "calc-repo")
    (root / "instances.jsonl").write_text(json.dumps(ROWS[CLAMP]) + "\n")
    config = {
        "kind": "eval", "tasks": {"instances": "instances.jsonl", "dataset_name": "trialbook-swe-example"},
        "variants": [
            {"name": "mini", "agent": "mini-swe-agent", "model": MODEL, "api_base": server.base_url,
             "api_key_env": KEY_ENV, "settings": {"retry_wait_s": 0.01, "step_limit": 7}},
            {"name": "nop", "agent": "nop"},
        ],
        "attempts": 2, "concurrency": 1,
        "timeouts": {"environment_setup": 60, "agent": 60, "verifier": 60},
        "runtime_info": {"output": {"eval_results_dir": "artifacts/jobs", "layout": "velora", **output}},
    }
    init_block(root, "eval", config_text=yaml.safe_dump(config, sort_keys=False))
    return root


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One real job, run once: mini resolves the instance twice (2 LLM calls each), nop never does."""
    tmp = tmp_path_factory.mktemp("velora-run")
    mp = pytest.MonkeyPatch()
    mp.setenv(KEY_ENV, f"sk-test-{secrets.token_hex(8)}")
    seen: list[tuple[str, bool]] = []
    try:
        with ScriptedLLMServer([tool_call(APPLY), tool_call(SUBMIT)] * 2) as server:
            root = swe_block(tmp, server)
            tree = root / "evaluation" / "evaluation_outputs" / "Trajectory_results" / "SWE-hard" / CLAMP

            def progress(done: int, total: int, rec: Any) -> None:
                if rec is not None:  # the Run dir exists as soon as the trial is reported finished
                    folder = "Claude" if rec.variant == "mini" else "nop"
                    seen.append((rec.trial_name, (tree / folder / f"Run{rec.attempt}" / "output.jsonl").is_file()))

            report = run_block(root / "config.yaml", "job", progress=progress)
    finally:
        mp.undo()
    return {"root": root, "job": report.outcome.job_dir, "tree": tree, "report": report, "seen": seen, "tmp": tmp}


def test_each_trial_is_written_as_it_finishes(job: dict[str, Any]) -> None:
    assert job["report"].outcome.aggregate["outcomes"] == {"resolved": 2, "unresolved": 2}
    assert len(job["seen"]) == 4 and all(present for _, present in job["seen"]), job["seen"]
    assert job["report"].steps["velora"] == {"root": str(job["tree"].parent), "benchmark": "SWE-hard", "runs": 4,
                                             "written_now": 0, "failed": []}
    runs = sorted(str(p.relative_to(job["tree"])) for p in job["tree"].glob("*/Run*"))
    assert runs == ["Claude/Run1", "Claude/Run2", "nop/Run1", "nop/Run2"]


def test_run_dir_files(job: dict[str, Any]) -> None:
    native = job["job"] / f"{CLAMP}__mini__2"
    run = job["tree"] / "Claude" / "Run2"
    assert sorted(p.name for p in run.iterdir()) == ["eval_outputs", "eval_pilot2_output.jsonl", "llm_completions",
                                                     "logs", "metadata.json", "output.jsonl"]
    record = read_json(native / "trial.json")
    meta = read_json(run / "metadata.json")
    assert meta["llm_config"]["model"] == MODEL and meta["max_iterations"] == 7
    assert meta["start_time"] == record["started_at"] and meta["details"]["finished_at"] == record["finished_at"]
    assert (meta["dataset"], meta["details"]["benchmark"], meta["details"]["run_number"]) == (
        "trialbook-swe-example", "SWE-hard", 2)
    # llm_completions: one request/response pair per call of the LiteLLM log, in call order
    calls = read_litellm_log(native / "agent" / "litellm-trajectory.jsonl")
    files = sorted(p.name for p in (run / "llm_completions" / CLAMP).iterdir())
    assert files == ["0001_request.json", "0001_response.json", "0002_request.json", "0002_response.json"]
    for n, call in enumerate(calls, 1):
        request = read_json(run / "llm_completions" / CLAMP / f"{n:04d}_request.json")
        response = read_json(run / "llm_completions" / CLAMP / f"{n:04d}_response.json")
        assert request["model"] == MODEL and request["messages"] == call.messages and request["tools"] == call.tools
        message = response["choices"][0]["message"]
        assert json.loads(message["tool_calls"][0]["function"]["arguments"])["command"] == (APPLY, SUBMIT)[n - 1]
        assert response["usage"]["prompt_tokens"] == call.usage.prompt_tokens == 100
    # the evaluation: spec report format, per-instance files, the F2P/P2P breakdown
    report = read_json(native / "evaluation" / "report.json")
    assert report[CLAMP]["resolved"] is True
    assert read_json(run / "eval_outputs" / "report.json") == report
    assert read_json(run / "eval_outputs" / CLAMP / "report.json") == report
    for name in ("patch.diff", "test_output.txt", "eval.sh", "run_instance.log"):
        assert (run / "eval_outputs" / CLAMP / name).read_bytes() == (native / "evaluation" / name).read_bytes()
    pilot = json.loads((run / "eval_pilot2_output.jsonl").read_text())
    assert (pilot["instance_id"], pilot["model"], pilot["run"], pilot["resolved"]) == (CLAMP, "Claude", 2, True)
    assert pilot["F2P"] == {"total": 1, "passed": 1} and pilot["P2P"] == {"total": 4, "passed": 4}
    assert pilot["tests_status"] == report[CLAMP]["tests_status"]
    line = json.loads((run / "output.jsonl").read_text())
    assert line["instance_id"] == CLAMP and "+    if x > hi:" in line["test_result"]["git_patch"]
    assert (run / "logs" / "litellm-trajectory.jsonl").is_file()
    nop = job["tree"] / "nop" / "Run1"
    assert not (nop / "llm_completions").exists()  # the nop agent made no LLM call
    assert json.loads((nop / "eval_pilot2_output.jsonl").read_text())["resolved"] is False


def _numbers(records: list[Any], names: dict[str, str]) -> dict[str, Any]:
    agg = aggregate(records, job="x")
    return {
        "outcomes": agg["outcomes"],
        "variants": {names.get(v, v): (s["n_trials"], s["n_success"], s["mean_reward"], s["pass_at_k"])
                     for v, s in agg["variants"].items()},
        "tokens": sorted((r.task, names.get(r.variant, r.variant), r.attempt,
                          r.usage.prompt_tokens if r.usage else None) for r in records),
    }


def test_read_back_gives_the_native_numbers(job: dict[str, Any], tmp_path: Path) -> None:
    native = [r for j in open_source(job["job"]) for r in j.records]
    root = job["root"] / "evaluation" / "evaluation_outputs"
    back = [r for j in get_reader("velora").read(root) for r in j.records]
    names = {"mini": "Claude"}
    assert len(back) == 4
    assert _numbers(back, {}) == _numbers(native, names)
    assert {r.extra["n_llm_completions"] for r in back if r.variant == "Claude"} == {2}
    # the files alone (without the copied trial record) give the same numbers
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    for meta_path in copy.rglob("metadata.json"):
        meta = json.loads(meta_path.read_text())
        del meta[EXPORT_KEY]
        meta_path.write_text(json.dumps(meta))
    alone = [r for j in get_reader("velora").read(copy) for r in j.records]
    assert _numbers(alone, {}) == _numbers(native, names)


def test_export_writes_the_same_files(job: dict[str, Any], tmp_path: Path) -> None:
    """One writer: ``trialbook export`` of the finished job gives the run output's files byte for byte."""
    export_job(job["job"], tmp_path / "out")
    exported = tmp_path / "out" / "Trajectory_results" / "SWE-hard" / CLAMP
    files = sorted(str(p.relative_to(exported)) for p in exported.rglob("*") if p.is_file())
    assert files == sorted(str(p.relative_to(job["tree"])) for p in job["tree"].rglob("*") if p.is_file())
    for rel in files:
        if Path(rel).name in ("metadata.json", "output.jsonl"):
            continue  # these name their own path (eval_output_dir); the metadata test reads them
        assert (exported / rel).read_bytes() == (job["tree"] / rel).read_bytes(), rel


def test_a_second_job_never_overwrites_the_tree(job: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-test-unused")
    before = {p: p.read_bytes() for p in job["tree"].rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match="Run dir.*already hold another run.*trajectory_results_dir"):
        run_block(job["root"] / "config.yaml", "another")
    assert not (job["root"] / "artifacts" / "jobs" / "another" / "config.yaml").exists()  # refused before it ran
    assert {p: p.read_bytes() for p in job["tree"].rglob("*") if p.is_file()} == before


def test_harbor_tasks_are_not_labelled_swe_hard(tmp_path: Path) -> None:
    root = make_block(tmp_path, tasks=["hello-world"], runtime_info={"output": {"layout": "velora"}})
    run_block(root / "config.yaml", "j")
    runs = root / "evaluation" / "evaluation_outputs" / "Trajectory_results"
    assert [str(p.relative_to(runs)) for p in runs.glob("*/*/*/Run*")] == ["tasks/hello-world/oracle/Run1"]
    [view] = [t for j in get_reader("velora").read(runs) for t in j.trials]
    assert view.record.outcome == "resolved" and view.record.reward == 1.0


def test_variants_sharing_a_model_folder_are_refused_before_any_trial(tmp_path: Path) -> None:
    variants = [{"name": "a", "agent": "nop", "model": "anthropic/claude-x"},
                {"name": "b", "agent": "nop", "model": "claude-y"}]
    root = make_block(tmp_path, tasks=["hello-world"], variants=variants,
                      runtime_info={"output": {"layout": "velora"}})
    with pytest.raises(ConfigError, match=r"share a model folder \(Claude: a, b\).*model_dirs: variant"):
        run_block(root / "config.yaml", "j")
    assert not (root / "artifacts" / "jobs" / "j").exists()
    config = yaml.safe_load((root / "config.yaml").read_text())
    config["runtime_info"]["output"]["model_dirs"] = "variant"
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    run_block(root / "config.yaml", "j")
    runs = root / "evaluation" / "evaluation_outputs" / "Trajectory_results" / "tasks" / "hello-world"
    assert sorted(p.name for p in runs.iterdir()) == ["a", "b"]
