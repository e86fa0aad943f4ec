"""The real Claude Code and Codex CLIs end to end, in one job: each installed by its variant, run in
a ``network: false`` sandbox, its calls (Anthropic messages for Claude Code, OpenAI Responses
for Codex, both streamed) through the model gateway to a scripted OpenAI-compatible server.

The CLIs come from npm; ``dev/setup.sh --test`` keeps pinned copies in ``.cache/agent-clis/``
so this test runs offline. A CLI missing there is left out of the job; with neither the test
is skipped and says why, unless TRIALBOOK_REQUIRE_AGENT_CLIS=1 (dev/test.sh) makes any missing CLI a failure.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

import pytest
from conftest import make_block, requires_bwrap
from scripted_llm_server import SUBMIT, Reply, ScriptedLLMServer, text, tool_call, tool_calls
from typer.testing import CliRunner

from trialbook.app.pipeline import run_block
from trialbook.cli.main import app
from trialbook.jsonio import read_json
from trialbook.model.atif_validate import validate_trajectory
from trialbook.run.llm_log import read_litellm_log

PREFETCHED = Path(__file__).resolve().parent.parent / ".cache" / "agent-clis"
#: variant/agent name -> (npm package, the native session files it leaves under agent/)
CLIS = {"claude-code": ("@anthropic-ai/claude-code", "claude-code/projects/*/*.jsonl"),
        "codex": ("@openai/codex", "codex/sessions/**/*.jsonl")}
AVAILABLE = [name for name in CLIS if (PREFETCHED / name / "node_modules" / ".bin").is_dir()]
KEY_ENV = "TEST_GATEWAY_CLI_KEY"
WRITE = "printf 'Hello, world!\\n' > /app/hello.txt"

pytestmark = [requires_bwrap, pytest.mark.skipif(
    not AVAILABLE and os.environ.get("TRIALBOOK_REQUIRE_AGENT_CLIS") != "1", reason="neither Claude Code nor Codex is in .cache/agent-clis/ (run dev/setup.sh --test "
    "with npm and the npm registry reachable)")]


def responder(body: dict[str, Any]) -> Reply:
    """The model: run the CLI's shell tool once to write the file, then say it is done. Side
    requests without tools (titles, summaries) get a short text."""
    tools = {t.get("function", {}).get("name") for t in body.get("tools") or []}
    if not tools:
        return text("Hello world task")
    answered = any(m.get("role") == "tool" for m in body.get("messages") or [])
    if "bash" in tools:  # mini-swe-agent: write, then submit
        return tool_call(SUBMIT if answered else WRITE, content="Writing the file.")
    if answered:
        return text("Done: /app/hello.txt is written.")
    if "Bash" in tools:  # Claude Code
        return tool_call(WRITE, name="Bash", content="Writing the file.")
    if "exec" in tools:  # Codex: a JavaScript orchestrator over its own tools
        script = f"const r = await tools.exec_command({{cmd: {json.dumps(WRITE)}}}); text(r);"
        return tool_calls([("exec", json.dumps({"content": script}))], content="Writing the file.")
    return text(f"no shell tool among {sorted(tools)}")


def variant(name: str, server: ScriptedLLMServer) -> dict[str, Any]:
    package = CLIS[name][0]
    version = read_json(PREFETCHED / name / "node_modules" / package / "package.json")["version"]
    return {"name": name, "agent": name, "model": "openai/scripted", "api_base": server.base_url,
            "api_key_env": KEY_ENV, "settings": {
                "version": version,
                # offline: the prefetched copy instead of the default `npm install`
                "install": f'ln -s {PREFETCHED / name}/node_modules "$TRIALBOOK_AGENT_DIR/node_modules"'}}


MINI = {"name": "mini-swe-agent", "agent": "mini-swe-agent", "model": "openai/scripted",
        "api_key_env": KEY_ENV, "settings": {"retry_wait_s": 0.01}}


def test_agent_clis_solve_hello_world_through_the_gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Claude Code, Codex and mini-swe-agent in one config: each solves the task, every call is
    its trial's log line, and show / analyze / convert treat the three alike."""
    if os.environ.get("TRIALBOOK_REQUIRE_AGENT_CLIS") == "1":
        missing = sorted(set(CLIS) - set(AVAILABLE))
        assert not missing, f"{missing} not in {PREFETCHED}: dev/setup.sh --test installs them with npm"
    real_key = f"sk-real-{secrets.token_hex(16)}"
    monkeypatch.setenv(KEY_ENV, real_key)
    with ScriptedLLMServer(responder=responder) as server:
        root = make_block(tmp_path, tasks=["hello-world"], concurrency=2,
                          timeouts={"environment_setup": 30, "agent": 180, "verifier": 30},
                          environment={"ro_binds": [str(PREFETCHED)]},
                          variants=[*(variant(name, server) for name in AVAILABLE),
                                    {**MINI, "api_base": server.base_url}])
        job_dir = run_block(root / "config.yaml", "job").outcome.job_dir
    through_gateway = [r for r in server.chat_requests
                       if "bash" not in {t.get("function", {}).get("name") for t in r.body.get("tools") or []}]
    assert through_gateway and all(r.body.get("stream") for r in through_gateway)
    assert {r.headers["authorization"] for r in server.chat_requests} == {f"Bearer {real_key}"}
    n_lines = 0
    trials = sorted(p.parent for p in job_dir.glob("*/trial.json"))
    assert len(trials) == len(AVAILABLE) + 1
    for trial in trials:
        record = read_json(trial / "trial.json")
        name = record["variant"]
        assert record["outcome"] == "resolved", (record, (trial / "agent" / "stdout.txt").read_text()[-3000:],
                                                 (trial / "agent" / "stderr.txt").read_text()[-3000:])
        lines = read_litellm_log(trial / "agent" / "litellm-trajectory.jsonl")
        n_lines += len(lines)
        assert {ln.trial_id for ln in lines} == {f"job/{trial.name}"} and len(lines) >= 2
        assert all(ln.status == "success" and ln.model == "openai/scripted" for ln in lines)
        assert record["usage"]["prompt_tokens"] == 100 * len(lines)
        traj = read_json(trial / "agent" / "trajectory.json")
        assert validate_trajectory(traj) == []
        if name == MINI["name"]:
            continue
        assert record["extra"]["agent_version"] == variant(name, server)["settings"]["version"]
        calls = [c for ln in lines if ln.response for c in ln.response.tool_calls or []]
        assert len(calls) == 1 and "/app/hello.txt" in (calls[0].function.arguments or "")
        assert any(ln.messages and ln.messages[-1].get("role") == "tool" for ln in lines)  # the result went back
        assert record["extra"]["gateway"] == {"calls": len(lines), "logged": len(lines)}
        assert [len(s.get("tool_calls") or []) for s in traj["steps"] if s["source"] == "agent"].count(1) == 1
        assert list((trial / "agent").glob(CLIS[name][1])), f"{name}: no native session log"
    assert n_lines == len(server.chat_requests)  # every request an agent made is a line of its trial's log
    leaked = [p for p in job_dir.rglob("*") if p.is_file() and real_key.encode() in p.read_bytes()]
    assert leaked == []
    _same_commands_for_every_agent(root, job_dir, [*AVAILABLE, MINI["name"]])


def _cli(*args: str | Path) -> Any:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _same_commands_for_every_agent(root: Path, job_dir: Path, names: list[str]) -> None:
    """show, analyze and convert: one row, one report and one SFT example per agent, alike."""
    summary = _cli("show", job_dir, "--json", "--block", root)
    rows = {v["variant"]: v for v in summary["variants"]}
    assert sorted(rows) == sorted(names)
    for row in rows.values():
        assert (row["n_trials"], row["n_success"], row["n_errors"]) == (1, 1, 0), row
        assert row["total_tokens"] and row["mean_turns"] and row["mean_tool_calls"], row
    for n in range(1, len(names) + 1):
        report = _cli("analyze", job_dir, "--trial", n, "--json", "--block", root)
        assert report["outcome"] == "resolved" and report["total_tokens"] > 0, report
        assert report["source"] == "atif" and report["n_llm_calls"] >= 2, report
        assert sum(report["tool_calls"].values()) >= 1, report
    converted = _cli("convert", job_dir, "--out", root / "sft-all", "--json", "--block", root)
    assert [(c["trajectories_in"], c["kept"]) for c in converted] == [(len(names), len(names))], converted
