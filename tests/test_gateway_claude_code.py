"""The real Claude Code CLI end to end: installed by its ``claude-code`` variant, run in a
``network: false`` sandbox, its Anthropic API calls through the model gateway to a scripted
OpenAI-compatible server (streamed, as Claude Code asks).

Claude Code comes from npm; ``dev/setup.sh --test`` keeps a pinned copy in
``.cache/agent-clis/claude-code`` so this test runs offline. Without it the test is skipped.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from conftest import make_block, requires_bwrap
from scripted_llm_server import Reply, ScriptedLLMServer, text, tool_call

from trialbook.app.pipeline import run_block
from trialbook.jsonio import read_json
from trialbook.model.atif_validate import validate_trajectory
from trialbook.run.llm_log import read_litellm_log

PREFETCHED = Path(__file__).resolve().parent.parent / ".cache" / "agent-clis" / "claude-code"
KEY_ENV = "TEST_GATEWAY_CLAUDE_KEY"
WRITE = "printf 'Hello, world!\\n' > /app/hello.txt"

pytestmark = [requires_bwrap, pytest.mark.skipif(
    not (PREFETCHED / "node_modules" / ".bin" / "claude").exists(),
    reason="Claude Code is not in .cache/agent-clis (run dev/setup.sh --test with npm and the npm registry reachable)")]


def responder(body: dict[str, Any]) -> Reply:
    """The model: with tools offered, run the Bash tool once, then say it is done; side requests
    (titles, summaries) get a short text."""
    messages = body.get("messages") or []
    if not body.get("tools"):
        return text("Hello world task")
    if any(m.get("role") == "tool" for m in messages):
        return text("Done: /app/hello.txt is written.")
    return tool_call(WRITE, name="Bash", content="Writing the file.")


def test_claude_code_solves_hello_world_through_the_gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_key = f"sk-real-{secrets.token_hex(16)}"
    monkeypatch.setenv(KEY_ENV, real_key)
    version = read_json(PREFETCHED / "node_modules" / "@anthropic-ai" / "claude-code" / "package.json")["version"]
    with ScriptedLLMServer(responder=responder) as server:
        root = make_block(
            tmp_path, tasks=["hello-world"],
            timeouts={"environment_setup": 30, "agent": 180, "verifier": 30},
            environment={"ro_binds": [str(PREFETCHED)]},
            variants=[{"name": "claude", "agent": "claude-code", "model": "openai/scripted",
                       "api_base": server.base_url, "api_key_env": KEY_ENV,
                       "settings": {"version": version, "install": (
                           f'ln -s {PREFETCHED}/node_modules "$TRIALBOOK_AGENT_DIR/node_modules"')}}])
        job_dir = run_block(root / "config.yaml", "job").outcome.job_dir
    trial = job_dir / "hello-world"
    record = read_json(trial / "trial.json")
    assert record["outcome"] == "resolved", (record, (trial / "agent" / "stdout.txt").read_text()[-3000:],
                                             (trial / "agent" / "stderr.txt").read_text()[-3000:])
    assert record["extra"]["agent_version"] == version
    lines = read_litellm_log(trial / "agent" / "litellm-trajectory.jsonl")
    assert len(lines) == len(server.chat_requests) >= 2  # every request Claude Code made is a line
    assert {ln.trial_id for ln in lines} == {"job/hello-world"}
    assert all(r.body.get("stream") for r in server.chat_requests)
    assert {r.headers["authorization"] for r in server.chat_requests} == {f"Bearer {real_key}"}
    calls = [c for ln in lines if ln.response for c in ln.response.tool_calls or []]
    assert [(c.function.name, json.loads(c.function.arguments or "{}").get("command")) for c in calls] == [("Bash", WRITE)]
    assert any(ln.messages and ln.messages[-1].get("role") == "tool" for ln in lines)  # the Bash result went back
    assert record["usage"]["prompt_tokens"] == 100 * len(lines)
    traj = read_json(trial / "agent" / "trajectory.json")
    assert validate_trajectory(traj) == []
    assert list((trial / "agent" / "claude-code").rglob("*.jsonl"))  # Claude Code's own session log
    leaked = [p for p in job_dir.rglob("*") if p.is_file() and real_key.encode() in p.read_bytes()]
    assert leaked == []
