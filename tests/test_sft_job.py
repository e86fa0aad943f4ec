"""SFT conversion of whole jobs: automatic after a trajgen run, the CLI, and foreign layouts."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from conftest import make_block, requires_bwrap
from hf_tiny import write_cached_model
from scripted_llm_server import SUBMIT, ScriptedLLMServer, tool_call

from trialbook.app.pipeline import run_block
from trialbook.errors import ConfigError
from trialbook.jsonio import read_json
from trialbook.sft import ConvertOptions
from trialbook.sft.job import convert_job

FIXTURES = Path(__file__).parent / "fixtures"
KEY_ENV = "TEST_SFT_API_KEY"


@requires_bwrap
def test_trajgen_run_converts_automatically_and_cli_filters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, f"sk-{secrets.token_hex(8)}")
    script = [tool_call("echo 'Hello, world!' > /app/hello.txt", content="Writing it.", reasoning="Easy."),
              tool_call(SUBMIT, content="Done.")]
    with ScriptedLLMServer(script) as srv:
        mini = {"name": "mini", "agent": "mini-swe-agent", "model": "openai/scripted-sft",
                "api_base": srv.base_url, "api_key_env": KEY_ENV, "settings": {"retry_wait_s": 0.01}}
        root = make_block(tmp_path, tasks=["hello-world"], kind="trajgen", concurrency=1,
                          variants=[mini, {"name": "nop", "agent": "nop"}],
                          sft_conversion={"enabled": True},
                          runtime_info={"output": {"raw_trajectories_dir": "artifacts/jobs",
                                                   "sft_data_dir": "artifacts/sft_data"}})
        report = run_block(root / "config.yaml", "tg")
    assert "sft" in report.steps, report.step_errors
    out = root / "artifacts" / "sft_data" / "tg"
    assert sorted(p.name for p in out.iterdir()) == ["dataset_info.json", "im.jsonl", "lf.json", "lf.stats.json",
                                                    "lf_train.yaml"]
    assert read_json(root / "artifacts" / "jobs" / "tg" / "result.json")["kind"] == "trajgen"
    im = [orjson.loads(line) for line in (out / "im.jsonl").read_bytes().splitlines()]
    assert [(r["task"], r["variant"], r["attempt"], r["score"], r["resolved"]) for r in im] == [
        ("hello-world", "mini", 1, 1.0, True)]
    rec = im[0]
    assert rec["id"] == "tg/hello-world__mini__1" and rec["job"] == "tg"
    assert rec["meta"]["source_layout"] == "native" and rec["meta"]["trial_path"].endswith("hello-world__mini__1")
    roles = [m["role"] for m in rec["messages"]]
    assert roles[:3] == ["system", "user", "assistant"] and "tool" in roles
    call = rec["messages"][2]["tool_calls"][0]
    assert call["type"] == "function" and call["function"]["name"] == "bash"
    assert json.loads(call["function"]["arguments"])["command"].startswith("echo 'Hello")
    assert rec["messages"][2]["reasoning_content"] == "Easy."
    lf = read_json(out / "lf.json")
    assert len(lf) == 1 and lf[0]["conversations"][0]["from"] == "human"
    assert read_json(out / "dataset_info.json")["trialbook_tg"]["file_name"] == "lf.json"
    stats = read_json(out / "lf.stats.json")
    assert stats["trajectories"]["in"] == 2 and stats["trajectories"]["kept"] == 1
    assert stats["trajectories"]["dropped"]["empty"] == 1  # the nop trial: an instruction, no assistant turn

    res = subprocess.run([sys.executable, "-m", "trialbook.cli.main", "convert", "tg", "--block", str(root),
                          "--thinking", "strip", "--out", str(tmp_path / "strip"), "--json"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)[0]["kept"] == 1
    stripped = orjson.loads((tmp_path / "strip" / "im.jsonl").read_bytes().splitlines()[0])
    assert "reasoning_content" not in stripped["messages"][2]


def test_convert_foreign_layouts(tmp_path: Path) -> None:
    harbor_root = FIXTURES / "harbor"
    [result] = convert_job(next(p for p in harbor_root.rglob("jobs/*") if p.is_dir()), layout="harbor",
                           out=tmp_path / "harbor", options=ConvertOptions())
    stats = result.stats["trajectories"]
    # terminus-2 trials have ATIF trajectories; oracle/nop trials have none
    assert result.kept >= 1 and stats["dropped"]["no_trajectory"] >= 1
    rec = orjson.loads((tmp_path / "harbor" / "im.jsonl").read_bytes().splitlines()[0])
    assert rec["meta"]["source_layout"] == "harbor" and rec["variant"].startswith("terminus-2")
    results = convert_job(FIXTURES / "velora", out=tmp_path / "velora", options=ConvertOptions())
    assert sum(r.kept for r in results) >= 1
    assert all((r.out_dir / "lf.json").is_file() for r in results)


def test_a_tokenizer_that_cannot_load_stops_the_run_before_any_trial(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    root = make_block(tmp_path, tasks=["hello-world"], kind="trajgen",
                      sft_conversion={"enabled": True, "tokenizer": "hf:acme/not-downloaded"})
    with pytest.raises(ConfigError, match="no tokenizer.json for model acme/not-downloaded in the Hugging Face cache"):
        run_block(root / "config.yaml", "early")
    assert not list((root / "artifacts").rglob("trial.json"))


def test_cli_convert_counts_with_a_cached_hf_model(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    write_cached_model(cache, "acme/tiny")
    job = next(p for p in (FIXTURES / "harbor").rglob("jobs/*") if p.is_dir())
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    res = subprocess.run([sys.executable, "-m", "trialbook.cli.main", "convert", str(job), "--layout", "harbor",
                          "--tokenizer", "hf:acme/tiny", "--out", str(tmp_path / "out"), "--json"],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    [summary] = json.loads(res.stdout)
    assert summary["tokenizer"] == "hf:acme/tiny" and summary["kept"] >= 1
    tokens = read_json(tmp_path / "out" / "lf.stats.json")["tokens"]
    assert tokens["rendering"] == f"chat template of {cache}/models--acme--tiny/snapshots/abc/tokenizer_config.json"
    assert tokens["total"] > 0
    res = subprocess.run([sys.executable, "-m", "trialbook.cli.main", "convert", str(job), "--layout", "harbor",
                          "--tokenizer", "hf:acme/other", "--out", str(tmp_path / "other"), "--json"],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert res.returncode != 0 and not (tmp_path / "other").exists()
    assert "no tokenizer.json for model acme/other" in res.stderr and "Traceback" not in res.stderr
