"""Anthropic Messages and OpenAI Responses API shapes to the OpenAI chat shape of the LiteLLM log line.

The gateway serves all three API shapes; its log keeps one (the chat shape every reader of
``agent/litellm-trajectory.jsonl`` knows), so a Claude Code or Codex trial reads like any
other: ``system``/``instructions`` become a system message, ``tool_use`` blocks and
``function_call`` items tool calls, ``tool_result`` blocks and ``function_call_output`` items
``tool`` messages, ``thinking`` blocks reasoning.
"""

from __future__ import annotations

import json
from typing import Any


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def anthropic_request_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The chat-shaped conversation of an Anthropic ``/v1/messages`` request body."""
    out: list[dict[str, Any]] = []
    system = _text_of(body.get("system"))
    if system:
        out.append({"role": "system", "content": system})
    for msg in body.get("messages") or []:
        if not isinstance(msg, dict):
            continue
        role, content = msg.get("role"), msg.get("content")
        if isinstance(content, str):
            out.append({"role": role, "content": content})
            continue
        blocks = [b for b in content or [] if isinstance(b, dict)]
        if role == "assistant":
            out.append(_assistant(blocks))
            continue
        texts = []
        for b in blocks:
            if b.get("type") == "tool_result":
                out.append({"role": "tool", "tool_call_id": b.get("tool_use_id"), "content": _text_of(b.get("content"))})
            elif b.get("type") == "text":
                texts.append(str(b.get("text", "")))
        if texts:
            out.append({"role": role, "content": "\n".join(texts)})
    return out


def _assistant(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant", "content": "\n".join(
        str(b.get("text", "")) for b in blocks if b.get("type") == "text") or None}
    calls = [{"id": b.get("id"), "type": "function",
              "function": {"name": b.get("name"), "arguments": json.dumps(b.get("input") or {})}}
             for b in blocks if b.get("type") == "tool_use"]
    if calls:
        msg["tool_calls"] = calls
    thinking = "\n".join(str(b.get("thinking", "")) for b in blocks if b.get("type") == "thinking")
    if thinking:
        msg["reasoning_content"] = thinking
    return msg


_STOP = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}


def response_as_chat(data: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic ``message`` response as a chat-completions response (first choice, usage)."""
    blocks = [b for b in data.get("content") or [] if isinstance(b, dict)]
    usage = data.get("usage") or {}
    prompt = int(usage.get("input_tokens") or 0) + int(usage.get("cache_read_input_tokens") or 0) \
        + int(usage.get("cache_creation_input_tokens") or 0)
    completion = int(usage.get("output_tokens") or 0)
    return {
        "id": data.get("id"),
        "model": data.get("model"),
        "choices": [{"index": 0, "message": _assistant(blocks),
                     "finish_reason": _STOP.get(str(data.get("stop_reason")), data.get("stop_reason"))}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                  "prompt_tokens_details": {"cached_tokens": usage.get("cache_read_input_tokens")}},
    }


def is_anthropic_message(obj: Any) -> bool:
    """Whether a response object is an Anthropic ``message`` (not a chat completion)."""
    return isinstance(obj, dict) and obj.get("type") == "message" and "content" in obj and "choices" not in obj


def responses_request_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The chat-shaped conversation of an OpenAI Responses API request (``instructions`` + ``input``)."""
    out: list[dict[str, Any]] = []
    if isinstance(body.get("instructions"), str) and body["instructions"]:
        out.append({"role": "system", "content": body["instructions"]})
    items = body.get("input")
    if isinstance(items, str):
        return [*out, {"role": "user", "content": items}]
    for item in items or []:
        if not isinstance(item, dict):
            continue
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            content = item.get("content")
            text = content if isinstance(content, str) else "\n".join(
                str(p.get("text", "")) for p in content or [] if isinstance(p, dict) and "text" in p)
            role = "system" if item.get("role") == "developer" else item.get("role")
            out.append({"role": role, "content": text})
        elif kind in ("function_call", "custom_tool_call"):  # a custom tool takes free text: {"input": text}
            arguments = item.get("arguments") or "{}" if kind == "function_call" \
                else json.dumps({"input": item.get("input") or ""})
            call = {"id": item.get("call_id"), "type": "function",
                    "function": {"name": item.get("name"), "arguments": arguments}}
            last = out[-1] if out else None
            if last is not None and last.get("role") == "assistant":  # the same reply's text and calls
                last.setdefault("tool_calls", []).append(call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind in ("function_call_output", "custom_tool_call_output"):
            output = item.get("output")
            if isinstance(output, list) and all(isinstance(p, dict) and "text" in p for p in output):
                output = "\n".join(str(p["text"]) for p in output)
            out.append({"role": "tool", "tool_call_id": item.get("call_id"),
                        "content": output if isinstance(output, str) else json.dumps(output)})
    return out
