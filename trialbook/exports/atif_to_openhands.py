"""ATIF trajectory -> OpenHands event history and run metrics (the inverse of :mod:`openhands_events`).

Used by ``trialbook export --layout velora`` so OpenHands/Velora tools can read our trials.
Events follow OpenHands' ``event_to_dict`` shape:

* system step -> ``system`` action (``args.content``, ``args.tools`` = the agent's tool definitions);
* user step -> user ``message`` action;
* agent step with tool calls -> one action per call (``bash``/``execute_bash`` -> ``run``,
  ``finish`` -> ``finish``, ``think`` -> ``think``, anything else -> ``call_tool_mcp``), each
  with ``tool_call_metadata`` whose ``model_response`` carries the step's text and every call
  with its JSON arguments; the first action carries the accumulated ``llm_metrics``;
* agent step without tool calls -> agent ``message`` action with ``llm_metrics``;
* observation results -> observations with ``cause`` = the answering action's id and the same
  ``tool_call_metadata`` (``run`` results get ``extras.metadata.exit_code`` when ATIF knows it);
  results that answer no call become ``success`` observations.

Reading the history back with :func:`trialbook.sources.openhands_events.build_trajectory`
gives the same steps, calls, arguments, observation links and per-step metrics.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from trialbook.model.trajectory import Content, Metrics, ObservationResult, Step, Trajectory

_BASH = frozenset({"bash", "execute_bash", "run"})


def text_of(content: Content | None) -> str:
    """ATIF message content as plain text (text parts joined; media parts left out)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(part.text for part in content if part.type == "text" and part.text is not None)


def _exit_code(result: ObservationResult) -> int | None:
    extra = result.extra or {}
    for key in ("exit_code", "returncode"):
        value = extra.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


class _Metrics:
    """Accumulates per-step metrics into OpenHands ``Metrics.get()`` snapshots."""

    def __init__(self, model: str | None) -> None:
        self.model = model or ""
        self.cost = 0.0
        self.costs: list[dict[str, Any]] = []
        self.usages: list[dict[str, Any]] = []

    def add(self, metrics: Metrics | None, response_id: str, model: str | None, stamp: float) -> None:
        if metrics is None:
            return
        model = model or self.model
        if metrics.cost_usd is not None:
            self.cost += metrics.cost_usd
            self.costs.append({"model": model, "cost": metrics.cost_usd, "timestamp": stamp})
        prompt, completion = metrics.prompt_tokens or 0, metrics.completion_tokens or 0
        self.usages.append({"model": model, "prompt_tokens": prompt, "completion_tokens": completion,
                            "cache_read_tokens": metrics.cached_tokens or 0, "cache_write_tokens": 0,
                            "context_window": 0, "per_turn_token": prompt + completion, "response_id": response_id})

    def snapshot(self) -> dict[str, Any]:
        """The accumulated metrics so far, shaped like OpenHands' ``Metrics.get()``."""
        prompt = sum(u["prompt_tokens"] for u in self.usages)
        completion = sum(u["completion_tokens"] for u in self.usages)
        return {
            "accumulated_cost": round(self.cost, 10),
            "max_budget_per_task": None,
            "accumulated_token_usage": {
                "model": self.model, "prompt_tokens": prompt, "completion_tokens": completion,
                "cache_read_tokens": sum(u["cache_read_tokens"] for u in self.usages), "cache_write_tokens": 0,
                "context_window": 0, "per_turn_token": self.usages[-1]["per_turn_token"] if self.usages else 0,
                "response_id": "",
            },
            "costs": list(self.costs),
            "response_latencies": [],
            "token_usages": list(self.usages),
        }


def _action(name: str, args: dict[str, Any], thought: str) -> tuple[str, dict[str, Any], str]:
    """OpenHands action type, args and display message for one tool call."""
    if name in _BASH:
        command = str(args.get("command", ""))
        return "run", {"command": command, "is_input": False, "thought": thought, "blocking": False,
                       "is_static": False, "cwd": None, "hidden": False, "confirmation_state": "confirmed",
                       "security_risk": -1}, f"Running command: {command}"
    if name == "finish":
        final = str(args.get("message", args.get("final_thought", thought)))
        return "finish", {"final_thought": final, "outputs": {}, "thought": thought}, final
    if name == "think":
        idea = str(args.get("thought", thought))
        return "think", {"thought": idea}, idea
    return "call_tool_mcp", {"name": name, "arguments": args, "thought": thought, "security_risk": -1}, \
        f"I am interacting with the MCP server with name: {name}"


class _History:
    """Builds the event list step by step."""

    def __init__(self, trajectory: Trajectory) -> None:
        self.trajectory = trajectory
        self.events: list[dict[str, Any]] = []
        self.metrics = _Metrics(trajectory.agent.model_name)

    def _emit(self, event: dict[str, Any], stamp: str) -> dict[str, Any]:
        event = {"id": len(self.events), "timestamp": stamp, **event}
        self.events.append(event)
        return event

    def step(self, step: Step, stamp: str, epoch: float) -> None:
        text = text_of(step.message)
        if step.source == "system":
            tools = self.trajectory.agent.tool_definitions or []
            self._emit({"source": "agent", "message": text, "action": "system",
                        "args": {"content": text, "tools": tools, "openhands_version": None,
                                 "agent_class": self.trajectory.agent.name}}, stamp)
            self._results(step, {}, stamp)
            return
        if step.source == "user":
            self._emit({"source": "user", "message": text, "action": "message",
                        "args": {"content": text, "file_urls": [], "image_urls": [], "wait_for_response": False,
                                 "security_risk": -1}}, stamp)
            return
        response_id = f"trialbook-step-{step.step_id}"
        model = step.model_name or self.trajectory.agent.model_name
        self.metrics.add(step.metrics, response_id, model, epoch)
        snapshot = self.metrics.snapshot() if step.metrics is not None else None
        calls = step.tool_calls or []
        if not calls:
            event: dict[str, Any] = {"source": "agent", "message": text, "action": "message",
                                     "args": {"content": text, "file_urls": None, "image_urls": None,
                                              "wait_for_response": False, "security_risk": -1}}
            if snapshot is not None:
                event["llm_metrics"] = snapshot
            self._emit(event, stamp)
            self._results(step, {}, stamp)
            return
        usage = {"prompt_tokens": (step.metrics.prompt_tokens if step.metrics else None),
                 "completion_tokens": (step.metrics.completion_tokens if step.metrics else None)}
        message: dict[str, Any] = {
            "role": "assistant", "content": text,
            "tool_calls": [{"id": c.tool_call_id, "type": "function",
                            "function": {"name": c.function_name, "arguments": orjson.dumps(c.arguments).decode()}}
                           for c in calls],
        }
        if step.reasoning_content:
            message["reasoning_content"] = step.reasoning_content
        response = {"id": response_id, "created": int(epoch), "model": model, "object": "chat.completion",
                    "choices": [{"index": 0, "finish_reason": "tool_calls", "message": message}], "usage": usage}
        by_call: dict[str, tuple[int, str, dict[str, Any], dict[str, Any]]] = {}
        for index, call in enumerate(calls):
            kind, args, shown = _action(call.function_name, call.arguments, text if index == 0 else "")
            tcm = {"function_name": call.function_name, "tool_call_id": call.tool_call_id,
                   "model_response": response, "total_calls_in_response": len(calls)}
            event = {"source": "agent", "message": shown, "action": kind, "tool_call_metadata": tcm, "args": args}
            if index == 0 and snapshot is not None:
                event["llm_metrics"] = snapshot
            emitted = self._emit(event, stamp)
            by_call[call.tool_call_id] = (emitted["id"], kind, tcm, args)
        self._results(step, by_call, stamp)

    def _results(self, step: Step, by_call: dict[str, tuple[int, str, dict[str, Any], dict[str, Any]]],
                 stamp: str) -> None:
        for result in step.observation.results if step.observation else []:
            content = text_of(result.content)
            link = by_call.get(result.source_call_id or "")
            if link is None:
                self._emit({"source": "agent", "message": content[:200], "observation": "success",
                            "content": content, "extras": {}}, stamp)
                continue
            cause, kind, tcm, args = link
            event: dict[str, Any] = {"source": "agent", "cause": cause, "tool_call_metadata": tcm, "content": content}
            if kind == "run":
                code = _exit_code(result)
                event.update(observation="run", message=f"Command `{args['command']}` executed with exit code {code}.",
                             extras={"command": args["command"], "hidden": False,
                                     "metadata": {"exit_code": -1 if code is None else code, "pid": -1,
                                                  "username": None, "hostname": None, "working_dir": None,
                                                  "py_interpreter_path": None, "prefix": "", "suffix": ""}},
                             success=code == 0)
            elif kind == "think":
                event.update(observation="think", message=content, extras={})
            else:
                event.update(observation="mcp", message=content[:200],
                             extras={"name": tcm["function_name"], "arguments": args.get("arguments", args)})
            self._emit(event, stamp)


def to_history(trajectory: Trajectory, default_time: str | None = None) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """``(history events, run metrics)`` for an output.jsonl line; metrics None when no step had any."""
    history = _History(trajectory)
    fallback = default_time or datetime.now(UTC).isoformat()
    for step in trajectory.steps:
        stamp = step.timestamp or fallback
        try:
            epoch = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except ValueError:
            epoch = 0.0
        history.step(step, stamp, epoch)
    has_metrics = any(step.metrics is not None for step in trajectory.steps)
    return history.events, (history.metrics.snapshot() if has_metrics else None)
