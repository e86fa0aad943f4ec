"""One test per private touchpoint of LiteLLM and mini-swe-agent (trialbook/run/upstream.py):
an upgrade that moves one fails here, by name, instead of deep inside a trial."""

from __future__ import annotations

import os
import subprocess
import sys

import litellm  # noqa: E402
import pytest
from minisweagent.environments.local import LocalEnvironment  # noqa: E402
from minisweagent.exceptions import FormatError, Submitted  # noqa: E402
from minisweagent.models.litellm_model import LitellmModel  # noqa: E402
from minisweagent.models.utils.actions_toolcall import BASH_TOOL  # noqa: E402

from trialbook.run import upstream

TOOL_CALL = {"id": "c1", "type": "function", "function": {"name": "bash", "arguments": '{"command": "ls -la"}'}}


def test_import_time_environment_is_set_before_litellm_loads() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("LITELLM_LOCAL_MODEL_COST_MAP", "MSWEA_SILENT_STARTUP")}
    code = ("import os, trialbook.run.upstream, litellm; "
            "print(os.environ['LITELLM_LOCAL_MODEL_COST_MAP'], os.environ['MSWEA_SILENT_STARTUP'], "
            "len(litellm.model_cost) > 100)")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert res.stdout.split() == ["True", "1", "True"], res.stderr[-500:]


def test_skip_mcp_flag_keeps_a_call_with_tools_off_the_mcp_gateway() -> None:
    call = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "tools": [BASH_TOOL],
            "mock_tool_calls": [TOOL_CALL]}
    upstream.skip_mcp(call)
    assert ("_skip_mcp_handler" in call) == upstream.SKIP_MCP
    response = litellm.completion(**call)  # accepted by this LiteLLM, and no MCP gateway imported
    assert response.choices[0].message.tool_calls[0].function.name == "bash"
    assert "mcp" not in sys.modules


def test_hidden_response_cost_is_litellms_price_of_the_call() -> None:
    response = litellm.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                  mock_response="hello")
    cost = upstream.hidden_response_cost(response)
    assert cost is not None and cost == pytest.approx(litellm.completion_cost(response), rel=1e-6) and cost > 0
    assert upstream.hidden_response_cost(object()) is None


def test_add_callback_registers_once() -> None:
    marker = object()
    try:
        upstream.add_callback(marker)
        upstream.add_callback(marker)
        assert litellm.callbacks.count(marker) == 1 and litellm.suppress_debug_info is True
    finally:
        while marker in litellm.callbacks:
            litellm.callbacks.remove(marker)


def test_prepare_messages_drops_mini_swe_agents_bookkeeping() -> None:
    model = LitellmModel(model_name="gpt-4o-mini")
    sent = upstream.prepare_messages(model, [{"role": "user", "content": "x", "extra": {"timestamp": 1.0}}])
    assert sent == [{"role": "user", "content": "x"}]


def test_parse_actions_reads_tool_calls_and_refuses_malformed_ones() -> None:
    model = LitellmModel(model_name="gpt-4o-mini")
    response = litellm.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                  tools=[BASH_TOOL], mock_tool_calls=[TOOL_CALL])
    assert upstream.parse_actions(model, response) == [{"command": "ls -la", "tool_call_id": "c1"}]
    bad = litellm.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                             mock_response="no tool call here")
    with pytest.raises(FormatError):
        upstream.parse_actions(model, bad)


def test_check_finished_raises_submitted_on_the_marker_only() -> None:
    env = LocalEnvironment()
    upstream.check_finished(env, {"output": "just output\n", "returncode": 0})
    with pytest.raises(Submitted):
        upstream.check_finished(env, {"output": "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT\ndone", "returncode": 0})


def test_proxy_key_is_the_object_the_proxy_takes_from_a_custom_auth() -> None:
    from litellm.proxy.auth.user_api_key_auth import (
        UserAPIKeyAuth,  # what the proxy's auth code checks
    )

    key = upstream.proxy_key(api_key="hash", key_alias="job/trial", metadata={"trial": "hash"})
    assert isinstance(key, UserAPIKeyAuth)
    assert (key.api_key, key.key_alias, key.metadata) == ("hash", "job/trial", {"trial": "hash"})
