"""ATIF trajectory -> OpenAI-style chat messages (the records of ``im.jsonl``).

Mapping, step by step:

* ``system`` step -> ``{"role": "system"}``; ``user`` step -> ``{"role": "user"}``.
* ``agent`` step -> ``{"role": "assistant", "content", "reasoning_content"?, "tool_calls"?}``.
  ``content`` is always a string (``""`` when the step only calls tools): OpenAI allows null
  there, but chat templates such as Qwen's do string operations on it and would fail.
  ``reasoning_content`` is kept or removed by the ``thinking`` option (``keep`` | ``strip``).
* ``tool_calls`` are OpenAI's shape: ``[{"id", "type": "function", "function": {"name",
  "arguments"}}]``. **``arguments`` is a JSON string**, as in OpenAI's API and fine-tuning
  format: the record stays lossless (key order, numbers) and schema-stable for Arrow/Parquet
  and Hugging Face ``datasets`` (objects with a different key set per tool do not fit one
  column type). Chat templates that want a mapping (most Hugging Face templates run
  ``arguments | tojson``) get one from :func:`template_messages`; Qwen's template takes both.
* An observation result with a ``source_call_id`` -> ``{"role": "tool", "tool_call_id",
  "name", "content"}`` right after its assistant message. A result *without* one (an action
  outside tool calling, e.g. mini-swe-agent's parsed shell blocks, or a system event) is
  environment feedback the model read as a prompt, so it becomes a ``user`` message; these
  follow the step's tool messages, because OpenAI requires tool messages to directly follow
  the assistant message that called them.
* Steps with ``is_copied_context: true`` (copied from an earlier trajectory, ATIF v1.5) and
  agent steps with ``llm_call_count == 0`` (deterministic dispatch, v1.7) were not generated
  by the model here, so they must not be trained on. Their assistant messages are kept as
  context with OpenAI's per-message ``"weight": 0`` (the fine-tuning format's "do not train
  on this turn"); copied system/user steps are plain context and are kept as they are.
  ShareGPT has no per-turn mask, so :func:`training_messages` removes weight-0 assistant
  messages (and their tool results) before the LLaMA-Factory conversion and token counting.
* Image/audio content parts cannot be represented: such a trajectory raises
  :class:`SkipTrajectory` (reason ``multimodal``) after its parts are counted. Text-only part
  lists are joined with newlines.
* Assistant messages with no content, reasoning or calls (after ``thinking: strip``) are
  dropped; a trajectory left with no trainable assistant message is skipped as ``empty``.

``tools`` is the OpenAI function list: ``agent.tool_definitions`` when present (bare
``{"name", ...}`` entries are wrapped as ``{"type": "function", "function": ...}``),
otherwise inferred from the calls made: each function's name and the argument names it was
called with, each with the empty schema ``{}`` (any value) and none marked required, because a
trajectory records no types and inventing them would be a lie. (The parameter object is
there because tool formatters such as LLaMA-Factory's default one read
``parameters.properties``.)
Embedded subagent trajectories are not converted (only the root conversation is).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import orjson

if TYPE_CHECKING:
    from trialbook.model.trajectory import Trajectory

Thinking = Literal["keep", "strip"]
THINKING_CHOICES: tuple[str, ...] = ("keep", "strip")

Message = dict[str, Any]

_BIG_INT = re.compile(r"\d{19}")


def dumps_json(value: Any, sort_keys: bool = False) -> bytes:
    """Compact UTF-8 JSON via orjson; integers beyond 64 bits (valid JSON) fall back to the stdlib."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else 0)
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys).encode()


def loads_json(text: str | bytes) -> Any:
    """Parse JSON via orjson, or the stdlib when a long digit run could be an integer orjson would round."""
    if _BIG_INT.search(text if isinstance(text, str) else text.decode()):
        return json.loads(text)
    return orjson.loads(text)


class SkipTrajectory(Exception):
    """A trajectory that cannot become a training example; ``reason`` is the lf.stats.json key."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(slots=True)
class ImConversation:
    """Messages and tools of one trajectory, plus what the mapping had to decide on the way."""

    messages: list[Message]
    tools: list[dict[str, Any]]
    tools_inferred: bool
    untrained_assistant: int  # assistant messages carrying weight 0 (copied context / no LLM)
    empty_assistant_dropped: int
    #: id(arguments string) -> (that string, the mapping it serialises), for the tool calls whose
    #: string is orjson's own output: a consumer needing the mapping back (sharegpt) skips the parse.
    parsed_arguments: dict[int, tuple[str, Any]] = field(default_factory=dict)


def trajectory_data(trajectory: Trajectory | dict[str, Any]) -> dict[str, Any]:
    """The trajectory as the ATIF JSON data the mapping reads. Data already checked against the
    models (:mod:`trialbook.sft.atif_data`) is used as it is; of a model, only what the mapping
    reads is copied out (half the cost of dumping it whole)."""
    if isinstance(trajectory, dict):
        return trajectory

    def parts(content: Any) -> Any:
        return content if content is None or isinstance(content, str) else [{"type": p.type, "text": p.text} for p in content]

    return {
        "steps": [
            {
                "source": step.source, "message": parts(step.message), "reasoning_content": step.reasoning_content,
                "tool_calls": None if step.tool_calls is None else [
                    {"tool_call_id": c.tool_call_id, "function_name": c.function_name, "arguments": c.arguments}
                    for c in step.tool_calls
                ],
                "observation": None if step.observation is None else {"results": [
                    {"source_call_id": r.source_call_id, "content": parts(r.content)} for r in step.observation.results
                ]},
                "is_copied_context": step.is_copied_context, "llm_call_count": step.llm_call_count,
            }
            for step in trajectory.steps
        ],
        "agent": {"tool_definitions": trajectory.agent.tool_definitions},
    }


def media_parts(trajectory: Trajectory | dict[str, Any]) -> dict[str, int]:
    """Count image and audio content parts in messages and observations (root trajectory only)."""
    counts = {"image": 0, "audio": 0}

    def add(content: Any) -> None:
        """Count the media parts of one message or result."""
        if isinstance(content, list):
            for part in content:
                if part["type"] != "text":
                    counts[part["type"]] = counts.get(part["type"], 0) + 1

    for step in trajectory_data(trajectory)["steps"]:
        add(step.get("message"))
        observation = step.get("observation")
        if observation is not None:
            for result in observation["results"]:
                add(result.get("content"))
    return counts


def content_text(content: Any) -> str:
    """ATIF message/observation content as text: strings as-is, text parts joined by newlines
    (parts as models, or as mappings in ATIF JSON data)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for part in content:
        kind, text = (part["type"], part.get("text")) if isinstance(part, dict) else (part.type, part.text)
        if kind != "text":
            raise SkipTrajectory("multimodal", f"{kind} content part")
        texts.append(text or "")
    return "\n".join(texts)


def normalise_tools(definitions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI's ``{"type": "function", "function": {...}}`` shape for every tool definition."""
    tools = []
    for tool in definitions:
        if "function" not in tool and "name" in tool:
            tools.append({"type": "function", "function": tool})
        else:
            tools.append(tool)
    return tools


def _observation_messages(step: dict[str, Any], names: dict[str, str], out: list[Message]) -> None:
    """Append the tool messages, then the user messages, for one step's observation."""
    observation = step.get("observation")
    if observation is None:
        return
    feedback: list[Message] = []
    for result in observation["results"]:
        text = content_text(result.get("content"))
        call_id = result.get("source_call_id")
        if call_id is not None:
            out.append({"role": "tool", "tool_call_id": call_id, "name": names.get(call_id, ""), "content": text})
        else:
            feedback.append({"role": "user", "content": text})
    out.extend(feedback)


def trajectory_to_messages(trajectory: Trajectory | dict[str, Any], thinking: Thinking = "keep") -> ImConversation:
    """Map one ATIF trajectory to chat messages and tools (see the module docstring for the rules).

    ``trajectory``: a model, or ATIF JSON data checked against the models (see
    :func:`trajectory_data`). Raises :class:`SkipTrajectory` for multimodal content or when
    nothing is left to train on.
    """
    data = trajectory_data(trajectory)
    messages: list[Message] = []
    inferred: dict[str, dict[str, None]] = {}
    untrained = 0
    dropped_empty = 0
    trainable = 0
    parsed: dict[int, tuple[str, Any]] = {}
    for step in data["steps"]:
        text = content_text(step.get("message"))
        source = step["source"]
        if source != "agent":
            messages.append({"role": source, "content": text})
            _observation_messages(step, {}, messages)
            continue
        message: Message = {"role": "assistant", "content": text}
        reasoning = step.get("reasoning_content")
        if reasoning and thinking == "keep":
            message["reasoning_content"] = reasoning
        names: dict[str, str] = {}
        tool_calls = step.get("tool_calls")
        if tool_calls:
            calls = []
            for call in tool_calls:
                call_id, name, args = call["tool_call_id"], call["function_name"], call["arguments"]
                names[call_id] = name
                inferred.setdefault(name, {}).update(dict.fromkeys(args))
                try:  # orjson's output parses back to a value orjson writes identically
                    arguments = orjson.dumps(args).decode()
                    parsed[id(arguments)] = (arguments, args)
                except orjson.JSONEncodeError:
                    arguments = dumps_json(args).decode()
                calls.append({"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}})
            message["tool_calls"] = calls
        if not text and "reasoning_content" not in message and "tool_calls" not in message:
            dropped_empty += 1
        elif step.get("is_copied_context") or step.get("llm_call_count") == 0:
            message["weight"] = 0
            untrained += 1
            messages.append(message)
        else:
            trainable += 1
            messages.append(message)
        _observation_messages(step, names, messages)
    if trainable == 0:
        raise SkipTrajectory("empty", "no trainable assistant message")
    definitions = data["agent"].get("tool_definitions")
    if definitions:
        tools, tools_inferred = normalise_tools(definitions), False
    else:
        tools = [
            {
                "type": "function",
                "function": {"name": name, "parameters": {"type": "object", "properties": {k: {} for k in args}}},
            }
            for name, args in inferred.items()
        ]
        tools_inferred = bool(tools)
    return ImConversation(messages, tools, tools_inferred, untrained, dropped_empty, parsed)


def training_messages(messages: list[Message]) -> list[Message]:
    """The messages a trainer without per-turn masks may see: weight-0 assistant turns removed.

    Tool results answering a removed turn go too (they would answer nothing); everything else,
    including copied system/user context, stays.
    """
    if not any(m.get("weight") == 0 for m in messages):
        return messages
    removed: set[str] = set()
    out = []
    for message in messages:
        if message.get("weight") == 0:
            for call in message.get("tool_calls") or ():
                removed.add(call["id"])
            continue
        if message["role"] == "tool" and message.get("tool_call_id") in removed:
            continue
        out.append(message)
    return out


def template_messages(messages: list[Message]) -> list[Message]:
    """Copies of ``messages`` with tool-call ``arguments`` parsed to mappings, for chat templates.

    Most Hugging Face chat templates render ``arguments | tojson`` and would double-encode our
    JSON strings; this is the conversion they need.
    """
    out = []
    for message in messages:
        calls = message.get("tool_calls")
        if calls:
            message = dict(message)
            message["tool_calls"] = [
                {**call, "function": {**call["function"], "arguments": loads_json(call["function"]["arguments"])}}
                for call in calls
            ]
        out.append(message)
    return out
