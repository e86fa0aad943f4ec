"""The model gateway's parts without the proxy: Anthropic shapes, trial key files, the install cache,
the templates of the ``cli`` agent (fast; the proxy itself is exercised in test_gateway.py)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from conftest import requires_bwrap

from trialbook.config import VariantConfig
from trialbook.errors import ConfigError, ServiceUnavailableError
from trialbook.run.agents import install as installer
from trialbook.run.agents.base import get_agent
from trialbook.run.agents.installed import render
from trialbook.run.gateway import keys, shapes


def test_anthropic_request_becomes_the_chat_shape() -> None:
    body = {
        "system": [{"type": "text", "text": "Be brief."}],
        "messages": [
            {"role": "user", "content": "Fix the bug."},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Look first."},
                {"type": "text", "text": "Listing."},
                {"type": "tool_use", "id": "tu_1", "name": "Bash", "input": {"command": "ls"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "tu_1", "content": [{"type": "text", "text": "a.py"}]},
                {"type": "text", "text": "Go on."}]},
        ],
    }
    assert shapes.anthropic_request_messages(body) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Fix the bug."},
        {"role": "assistant", "content": "Listing.", "reasoning_content": "Look first.",
         "tool_calls": [{"id": "tu_1", "type": "function",
                         "function": {"name": "Bash", "arguments": json.dumps({"command": "ls"})}}]},
        {"role": "tool", "tool_call_id": "tu_1", "content": "a.py"},
        {"role": "user", "content": "Go on."},
    ]


def test_anthropic_response_becomes_a_chat_completion() -> None:
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
               "content": [{"type": "tool_use", "id": "tu_9", "name": "Write", "input": {"path": "a"}}],
               "stop_reason": "tool_use",
               "usage": {"input_tokens": 10, "cache_read_input_tokens": 30, "output_tokens": 5}}
    assert shapes.is_anthropic_message(message)
    chat = shapes.response_as_chat(message)
    assert chat["choices"][0]["finish_reason"] == "tool_calls"
    assert chat["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "Write"
    assert chat["usage"] == {"prompt_tokens": 40, "completion_tokens": 5, "total_tokens": 45,
                             "prompt_tokens_details": {"cached_tokens": 30}}
    assert not shapes.is_anthropic_message(chat)


def test_trial_key_files_hold_no_key_and_revoke(tmp_path: Path) -> None:
    key = keys.new_key()
    other = keys.new_key()
    assert key != other and key.startswith(keys.KEY_PREFIX) and len(key) > 40
    record = keys.KeyRecord(trial_id="job/t1", model_name="trialbook-v", log_path="/x/log.jsonl", step_limit=3)
    keys.write_record(tmp_path, key, record)
    assert keys.read_record(tmp_path, key) == record
    assert keys.read_record(tmp_path, other) is None
    assert keys.read_record(tmp_path, "") is None
    assert all(key not in p.read_text() for p in tmp_path.iterdir())  # only the hash names it
    keys.write_state(tmp_path, keys.key_id(key), keys.TrialState(accepted=2, logged=1))
    state = keys.read_state(tmp_path, key)
    assert (state.accepted, state.logged, state.settled) == (2, 1, False)
    keys.remove_record(tmp_path, key)
    assert keys.read_record(tmp_path, key) is None and list(tmp_path.iterdir()) == []
    keys.write_state(tmp_path, keys.key_id(key), keys.TrialState(accepted=5))  # a late call: not recreated
    assert list(tmp_path.iterdir()) == []


def test_templates_quote_values_and_leave_shell_variables() -> None:
    out = render('run --task {instruction} --model {model} v{version} ${HOME} {other}',
                 instruction="it's $(rm -rf /)", model="openai/x", version="1.0")
    assert out == "run --task 'it'\"'\"'s $(rm -rf /)' --model openai/x v1.0 ${HOME} {other}"


def variant(agent: str, **settings: object) -> VariantConfig:
    return VariantConfig(name="v", agent=agent, model="openai/x", settings=settings)


def test_cli_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="settings.run"):
        get_agent("cli").check(variant("cli"))
    with pytest.raises(ConfigError, match="settings.bogus: unknown key"):
        get_agent("cli").check(variant("cli", run="x", bogus=1))
    with pytest.raises(ConfigError, match="settings.version"):  # npm presets: versions are pinned
        get_agent("claude-code").check(variant("claude-code"))
    with pytest.raises(ConfigError, match="needs `model:`"):
        get_agent("cli").check(VariantConfig(name="v", agent="cli", settings={"run": "x"}))
    with pytest.raises(ConfigError, match="settings.model_kwargs.api_key: put API keys"):
        get_agent("cli").check(variant("cli", run="x", model_kwargs={"api_key": "sk-x"}))
    get_agent("codex").check(variant("codex", version="0.171.0"))
    get_agent("cli").check(variant("cli", run="true"))


@requires_bwrap
def test_install_runs_once_per_recipe_and_failures_stop(tmp_path: Path) -> None:
    script = 'echo ran >> /tmp/x; mkdir -p "$TRIALBOOK_AGENT_DIR/bin"; echo tool > "$TRIALBOOK_AGENT_DIR/bin/t"; echo done'
    first = asyncio.run(installer.install(tmp_path, "cli", "v", script, 60))
    assert (first / "bin" / "t").read_text() == "tool\n"
    assert (first / installer.INSTALL_LOG).read_text() == "done\n"
    mtime = (first / installer.DONE_MARKER).stat().st_mtime_ns
    again = asyncio.run(installer.install(tmp_path, "cli", "v", script, 60))
    assert again == first and (first / installer.DONE_MARKER).stat().st_mtime_ns == mtime  # not reinstalled
    other = asyncio.run(installer.install(tmp_path, "cli", "v", script + " # v2", 60))
    assert other != first
    with pytest.raises(ServiceUnavailableError, match="installing agent cli exited with code 3"):
        asyncio.run(installer.install(tmp_path, "cli", "v", "echo partial > $TRIALBOOK_AGENT_DIR/x; exit 3", 60))
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == sorted([first.name, other.name])


def test_responses_request_becomes_the_chat_shape() -> None:
    body = {"instructions": "Be brief.", "input": [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Rules."}]},
        {"role": "user", "content": "Fix it."},
        {"type": "reasoning", "summary": []},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Running."}]},
        {"type": "function_call", "call_id": "c1", "name": "shell", "arguments": '{"cmd": "ls"}'},
        {"type": "custom_tool_call", "call_id": "c2", "name": "exec", "input": "text(1)"},
        {"type": "function_call_output", "call_id": "c1", "output": "a.py"},
        {"type": "custom_tool_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "1"}]},
    ]}
    assert shapes.responses_request_messages(body) == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "Rules."},
        {"role": "user", "content": "Fix it."},
        {"role": "assistant", "content": "Running.", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "shell", "arguments": '{"cmd": "ls"}'}},
            {"id": "c2", "type": "function", "function": {"name": "exec", "arguments": '{"input": "text(1)"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "a.py"},
        {"role": "tool", "tool_call_id": "c2", "content": "1"},
    ]
    assert shapes.responses_request_messages({"input": "hi"}) == [{"role": "user", "content": "hi"}]
