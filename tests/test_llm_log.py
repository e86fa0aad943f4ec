"""The LiteLLM logger against a scripted OpenAI-compatible server: lines, replay, secrets."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from scripted_llm_server import ScriptedLLMServer, http_error, text, tool_call

from trialbook.model.litellm_line import LINE_SCHEMA, LineUsage, LiteLLMLine, usage_from_lines
from trialbook.model.schemas import json_schema
from trialbook.run.llm_log import (
    conversation_from_log,
    install_logger,
    open_trial_log,
    read_litellm_log,
    scrub,
)

litellm = pytest.importorskip("litellm")

TOOLS = [{"type": "function", "function": {
    "name": "bash", "description": "Run a command",
    "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
}}]
PRICING = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}
# LiteLLM 1.106 needs the optional `mcp` package for calls with tools unless told to skip it.
SKIP_MCP = ({"_skip_mcp_handler": True}
            if "_skip_mcp_handler" in inspect.unwrap(litellm.completion).__code__.co_consts else {})


def _call(server: ScriptedLLMServer, log, messages, *, key: str, step: int, tools=None, **kw):
    extra = {"tools": tools, **SKIP_MCP} if tools else {}
    return litellm.completion(model="openai/scripted", api_base=server.base_url, api_key=key,
                              messages=messages, metadata=log.call_metadata(step=step), max_retries=0,
                              **extra, **kw)


def test_failure_then_success_lines_field_by_field(tmp_path: Path) -> None:
    key = f"sk-test-{secrets.token_hex(12)}"
    path = tmp_path / "agent" / "litellm-trajectory.jsonl"
    path.parent.mkdir()
    log = open_trial_log("job/t1", path, secrets=[key])
    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "List /app"}]
    with ScriptedLLMServer([http_error(500, "overloaded"),
                            tool_call("ls /app", content="Looking.", reasoning="need a listing")]) as srv:
        with pytest.raises(litellm.exceptions.InternalServerError):
            _call(srv, log, messages, key=key, step=1, tools=TOOLS, temperature=0.0, **PRICING)
        _call(srv, log, messages, key=key, step=1, tools=TOOLS, temperature=0.0, **PRICING)
        assert log.wait_flushed(10)
        assert [r.headers.get("Authorization") for r in srv.chat_requests] == [f"Bearer {key}"] * 2
        base = srv.base_url
    log.close()

    raw = path.read_bytes()
    assert key.encode() not in raw
    objs = [json.loads(x) for x in raw.splitlines()]
    assert [o["schema"] for o in objs] == [LINE_SCHEMA] * 2
    fail, ok = read_litellm_log(path)
    for line in (fail, ok):
        assert (line.trial_id, line.step, line.model, line.provider) == ("job/t1", 1, "openai/scripted", "openai")
        assert line.api_base == base and line.messages == messages and line.tools == TOOLS
        assert line.params == {"temperature": 0.0}
        assert line.start_time and line.end_time and line.start_time <= line.end_time
        assert line.duration_s is not None and line.duration_s >= 0 and line.metadata == {}
    assert (fail.seq, fail.status, fail.response, fail.usage, fail.cost_usd) == (1, "failure", None, None, None)
    assert fail.error is not None and fail.error.status_code == 500
    assert fail.error.type == "InternalServerError" and "overloaded" in fail.error.message
    assert (ok.seq, ok.status, ok.error) == (2, "success", None)
    assert ok.response is not None and ok.response.content == "Looking."
    assert ok.response.reasoning_content == "need a listing" and ok.response.finish_reason == "tool_calls"
    (call,) = ok.response.tool_calls or []
    assert (call.id, call.function.name) == ("call_001_1", "bash")
    assert json.loads(call.function.arguments or "") == {"command": "ls /app"}
    assert ok.usage == LineUsage(prompt_tokens=100, completion_tokens=20, cached_tokens=40, total_tokens=120)
    assert ok.cost_usd == pytest.approx(100 * 1e-6 + 20 * 2e-6)
    assert ok.litellm_call_id and ok.litellm_call_id != fail.litellm_call_id
    usage = usage_from_lines([fail, ok])
    assert (usage.prompt_tokens, usage.cached_tokens, usage.n_llm_calls) == (100, 40, 1)


def test_replay_conversation_from_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    log = open_trial_log("job/replay", path)
    with ScriptedLLMServer([tool_call("echo hi"), text("All done.")]) as srv:
        messages: list[dict] = [{"role": "user", "content": "Say hi"}]
        r1 = _call(srv, log, messages, key="none", step=1, tools=TOOLS)
        messages += [r1.choices[0].message.model_dump(exclude_none=True),
                     {"role": "tool", "tool_call_id": r1.choices[0].message.tool_calls[0].id, "content": "hi"}]
        _call(srv, log, messages, key="none", step=2, tools=TOOLS)
        assert log.wait_flushed(10)
    conv = conversation_from_log(path)
    assert [m["role"] for m in conv] == ["user", "assistant", "tool", "assistant"]
    assert conv[1]["tool_calls"][0]["function"]["arguments"] == '{"command": "echo hi"}'
    assert conv[2] == {"role": "tool", "tool_call_id": "call_001_1", "content": "hi"}
    assert conv[3] == {"role": "assistant", "content": "All done."}
    assert conversation_from_log(path, trial_id="someone-else") == []

    # The stdlib-only snippet of docs/litellm-log.md replays the same conversation.
    doc = (Path(__file__).resolve().parents[1] / "docs" / "litellm-log.md").read_text()
    snippet = doc.split("## Replaying", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    out = subprocess.run([sys.executable, "-c", snippet, str(path)], capture_output=True, text=True, check=True)
    printed = out.stdout.splitlines()
    assert [ln.split(":")[0].strip() for ln in printed] == ["user", "assistant", "tool", "assistant"]
    assert 'bash{"command": "echo hi"}' in printed[1] and "'All done.'" in printed[3]


def test_async_calls_logged_once_and_foreign_calls_ignored(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    log = open_trial_log("job/async", path)
    with ScriptedLLMServer([http_error(503), text("ok"), text("not ours")]) as srv:
        async def main() -> None:
            for _ in range(2):
                with contextlib.suppress(litellm.exceptions.ServiceUnavailableError):
                    await litellm.acompletion(model="openai/scripted", api_base=srv.base_url, api_key="none",
                                              messages=[{"role": "user", "content": "x"}],
                                              metadata=log.call_metadata(step=1), max_retries=0)
            await asyncio.to_thread(log.wait_flushed, 10)

        asyncio.run(main())
        litellm.completion(model="openai/scripted", api_base=srv.base_url, api_key="none",
                           messages=[{"role": "user", "content": "x"}], max_retries=0)
    lines = read_litellm_log(path)
    assert [(ln.seq, ln.status) for ln in lines] == [(1, "failure"), (2, "success")]
    assert lines[0].error is not None and lines[0].error.status_code == 503
    assert install_logger() is install_logger()
    assert litellm.callbacks.count(install_logger()) == 1


def test_scrub_drops_credentials_keeps_token_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    # a variable's *name* does not make its value a secret: only values the config hands out are
    monkeypatch.setenv("SOME_SERVICE_TOKEN", "tok-abcdef-123")
    data = {"api_key": "k", "headers": {"Authorization": "Bearer x", "x-api-key": "y", "accept": "json"},
            "max_tokens": 5, "usage": {"prompt_tokens": 3}, "note": "uses tok-abcdef-123 and sk-extra-999"}
    assert scrub(data, ["sk-extra-999"]) == {
        "headers": {"accept": "json"}, "max_tokens": 5, "usage": {"prompt_tokens": 3},
        "note": "uses tok-abcdef-123 and ***REDACTED***",
    }


def test_litellm_line_schema_is_registered() -> None:
    schema = json_schema("litellm-line")
    assert {"schema", "trial_id", "seq", "status", "messages", "response", "usage", "cost_usd",
            "error"} <= set(schema["properties"])
    line = LiteLLMLine(seq=1, status="failure")
    assert line.to_json_dict()["schema"] == LINE_SCHEMA
