"""Every place trialbook relies on LiteLLM's or mini-swe-agent's internals, in one module.

Their public APIs are used directly elsewhere; what they do not promise (private attributes,
global state, environment variables read at import) goes through here, so an upgrade that
changes one breaks one function, and ``tests/test_upstream.py`` names it. The version
ranges in pyproject.toml (litellm >= 1.103, mini-swe-agent >= 2.4.5) are those this was
checked on: ``dev/upgrade.sh --lowest`` and the locked versions both run those tests.

Importing this module sets the environment LiteLLM and mini-swe-agent read at import
(offline price map, no start-up banner), so import it before either of them.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

# Read by LiteLLM at import: otherwise it fetches its price map from the network.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# Read by mini-swe-agent at import: otherwise it prints a banner on the runner's terminal.
os.environ.setdefault("MSWEA_SILENT_STARTUP", "1")

import litellm  # noqa: E402


def _knows_skip_mcp() -> bool:
    """Whether ``litellm.completion`` takes ``_skip_mcp_handler``: 1.106 and later import their
    MCP gateway (and the optional ``mcp`` package) for any call with tools unless told to skip
    it; older releases neither need nor know the flag. Its name is a constant of the function."""
    return "_skip_mcp_handler" in inspect.unwrap(litellm.completion).__code__.co_consts


SKIP_MCP = _knows_skip_mcp()


def skip_mcp(call: dict[str, Any]) -> None:
    """Add LiteLLM's skip-MCP flag to the kwargs of a ``completion`` call with tools, where known."""
    if SKIP_MCP:
        call["_skip_mcp_handler"] = True


def hidden_response_cost(response: Any) -> float | None:
    """The cost LiteLLM computed for a response (kept in its private ``_hidden_params``)."""
    value = (getattr(response, "_hidden_params", None) or {}).get("response_cost")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def add_callback(logger: Any) -> None:
    """Register a logger in LiteLLM's process-wide callback list (once) and quiet its debug hints."""
    litellm.suppress_debug_info = True
    if logger not in litellm.callbacks:
        litellm.callbacks.append(logger)


def proxy_key(**fields: Any) -> Any:
    """The LiteLLM proxy's key object (``UserAPIKeyAuth``) a custom auth function returns: the model
    gateway's auth hook (run/gateway/hooks.py) makes one per call. It lives in the proxy's private
    ``litellm.proxy._types`` module, so it is imported here, when the proxy calls the hook."""
    from litellm.proxy._types import UserAPIKeyAuth

    return UserAPIKeyAuth(**fields)


# mini-swe-agent: trialbook's model subclasses replace ``query`` (its own adds every call to the
# process-wide ``GLOBAL_MODEL_STATS``, which mixes trials run in one process, and retries
# without logging each attempt), so they call the helpers ``query`` uses themselves.

def prepare_messages(model: Any, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What mini-swe-agent's model sends for ``messages`` (its ``_prepare_messages_for_api``)."""
    return model._prepare_messages_for_api(messages)


def parse_actions(model: Any, response: Any) -> list[dict[str, Any]]:
    """The actions mini-swe-agent reads from a model response (its ``_parse_actions``); raises its
    ``FormatError`` for a malformed reply, which the agent loop turns into feedback."""
    return model._parse_actions(response)


def check_finished(environment: Any, output: dict[str, Any]) -> None:
    """mini-swe-agent's check of a command's output for the task's submit marker (its environment's
    ``_check_finished``); raises its ``Submitted`` when the agent submitted."""
    environment._check_finished(output)
