"""A trajgen block made by ``trialbook init --kind trajgen``, run with a model: the tree it leaves is
the one the trajgen documents draw (artifacts/jobs, artifacts/sft_data, artifacts/archives,
artifacts/index.yaml), with each file where they put it and nothing of the run outside them."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import requires_bwrap
from scripted_llm_server import SUBMIT, ScriptedLLMServer, tool_call

from trialbook.jsonio import read_json
from trialbook.run.llm_log import read_litellm_log
from trialbook.yamlio import read_yaml

pytestmark = requires_bwrap
KEY_ENV = "TEST_TRAJGEN_TREE_KEY"

#: The trajgen documents' tree, for a job of one task and one model (paths under the block).
SPEC_TREE = [
    "artifacts/jobs/{job}/result.json",
    "artifacts/jobs/{job}/config.yaml",
    "artifacts/jobs/{job}/{task}/agent/litellm-trajectory.jsonl",
    "artifacts/sft_data/{job}/im.jsonl",
    "artifacts/sft_data/{job}/lf.json",
    "artifacts/sft_data/{job}/lf.stats.json",
    "artifacts/archives/run_001/metadata.yaml",
    "artifacts/archives/run_001/config.yaml",
    "artifacts/archives/run_001/scripts",
    "artifacts/archives/run_001/session.log",
    "artifacts/archives/run_001/monitor.md",
    "artifacts/index.yaml",
]


def _trialbook(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "trialbook.cli.main", *args], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, "NO_COLOR": "1"})


def test_a_trajgen_run_leaves_the_documented_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, f"sk-{secrets.token_hex(8)}")
    made = _trialbook("init", "tg", "--kind", "trajgen", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    root = tmp_path / "tg"
    script = [tool_call("echo 'Hello, world!' > /app/hello.txt", content="Writing it."), tool_call(SUBMIT)]
    with ScriptedLLMServer(script) as srv:
        config = read_yaml(root / "config.yaml")
        config["variants"] = [{"name": "qwen", "agent": "mini-swe-agent", "model": "openai/scripted-tree",
                               "api_base": srv.base_url, "api_key_env": KEY_ENV,
                               "settings": {"retry_wait_s": 0.01}}]
        (root / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        ran = _trialbook("run", "--job", "j1", cwd=root)
    assert ran.returncode == 0, ran.stderr
    missing = [p for p in (t.format(job="j1", task="hello-world") for t in SPEC_TREE) if not (root / p).exists()]
    assert missing == []
    lines = read_litellm_log(root / "artifacts/jobs/j1/hello-world/agent/litellm-trajectory.jsonl")
    assert [ln.status for ln in lines] == ["success", "success"]
    result = read_json(root / "artifacts/jobs/j1/result.json")
    assert result["kind"] == "trajgen" and list(result["evals"]) == ["mini-swe-agent__openai/scripted-tree__tasks"], result
    assert result["evals"]["mini-swe-agent__openai/scripted-tree__tasks"]["metrics"] == [{"mean": 1.0}]
    assert read_yaml(root / "artifacts/jobs/j1/config.yaml")["variants"][0]["name"] == "qwen"
    assert len(read_json(root / "artifacts/sft_data/j1/lf.json")) == 1
    assert read_yaml(root / "artifacts/index.yaml")["runs"][0]["archive"] == "run_001"
    status = read_yaml(root / "config.yaml")["status"]
    assert status["state"] == "completed" and status["last_archive"] == 1, status
    # nothing of the run lands outside artifacts/ but the block's own bookkeeping
    made_by_run = {p.relative_to(root).parts[0] for p in root.iterdir()} - {"artifacts"}
    assert made_by_run <= {".gitignore", ".trialbook", "config.yaml", "scripts", "tasks", "logs", "results"}, made_by_run
