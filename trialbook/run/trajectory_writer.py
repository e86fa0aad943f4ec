"""The after-agent hook that gives every trial an ATIF ``agent/trajectory.json``.

Sources, in order of preference:

* **LLM agents**: the LiteLLM log (``agent/litellm-trajectory.jsonl``) drives the steps: the
  first call's leading system/user messages become system/user steps, and every successful
  call one agent step (reply text, reasoning, tool calls with arguments parsed to objects,
  per-step metrics). A call's observations are the messages added to the conversation between
  it and the next call (tool results keep their ``tool_call_id``); those of the last call come
  from the agent's native log (mini-swe-agent's ``.traj.json``). Failed attempts are kept on
  the step they preceded (``extra.failed_llm_calls``, ``llm_call_count``).
* **Command agents** (oracle, command): each command is a ``bash`` tool call whose output is
  the observation, after a user step with the instruction.
* **Anything else** (nop): the user step with the instruction.

Writing never fails a trial: a problem is recorded in ``trial.json`` ``extra.trajectory_error``.
The hook also fills ``usage``/``n_turns`` from the LiteLLM log when the agent did not report them.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from trialbook import __version__ as TRIALBOOK_VERSION
from trialbook.jsonio import read_json, write_json
from trialbook.model.litellm_line import LiteLLMLine, read_litellm_log, usage_from_lines
from trialbook.model.trajectory import Metrics, ObservationResult, Trajectory
from trialbook.model.trajectory_builder import TrajectoryBuilder
from trialbook.model.trial import TrialRecord
from trialbook.run.agents.base import AgentContext, AgentResult, get_agent
from trialbook.run.scrub import scrub


def _text(content: Any) -> str:
    """Message content as text: strings as they are, content parts joined (ATIF parts are stricter)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
    return str(content)


def _roles(messages: list[dict[str, Any]]) -> list[Any]:
    return [m.get("role") for m in messages]


def _added_messages(line: LiteLLMLine, later: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """Messages added after ``line``'s reply in a later conversation (None: it does not extend it)."""
    base = len(line.messages)
    if later is None or len(later) < base or _roles(later[:base]) != _roles(line.messages):
        return None
    added = later[base:]
    if added and added[0].get("role") == "assistant":
        added = added[1:]
    out: list[dict[str, Any]] = []
    for m in added:
        if m.get("role") == "assistant":
            break
        out.append(m)
        if m.get("role") == "exit":  # mini-swe-agent's end marker: what the last command ended with
            break
    return out


def _native(ctx: AgentContext) -> dict[str, Any] | None:
    """The agent's own JSON log, when its agent writes one (:attr:`Agent.native_log`)."""
    name = get_agent(ctx.variant.agent).native_log
    path = ctx.paths.agent_dir / name if name else None
    if path is None or not path.exists():
        return None
    data = read_json(path)
    return data if isinstance(data, dict) else None


def _native_actions(native: dict[str, Any] | None) -> dict[str, list[dict[str, Any]]]:
    """Parsed actions of each native assistant message, by the provider's response id."""
    out: dict[str, list[dict[str, Any]]] = {}
    for m in (native or {}).get("messages") or []:
        extra = m.get("extra") if isinstance(m, dict) else None
        if m.get("role") == "assistant" and isinstance(extra, dict):
            rid = (extra.get("response") or {}).get("id") if isinstance(extra.get("response"), dict) else None
            if rid:
                out[str(rid)] = list(extra.get("actions") or [])
    return out


def _observations(added: list[dict[str, Any]], call_ids: list[str]) -> list[ObservationResult]:
    """Tool results keep their call id; other feedback (user, exit) answers the first call left unanswered."""
    pending = list(call_ids)
    results = []
    for m in added:
        role = m.get("role")
        source = m.get("tool_call_id") if role == "tool" else None
        if source in pending:
            pending.remove(source)
        elif source is None and role in ("user", "exit") and pending:
            source = pending.pop(0)
        extra: dict[str, Any] = {"role": role}
        if role == "exit" and isinstance(m.get("extra"), dict):
            extra["exit_status"] = m["extra"].get("exit_status")
        results.append(ObservationResult(source_call_id=source, content=_text(m.get("content")), extra=extra))
    return results


def _llm_steps(b: TrajectoryBuilder, lines: list[LiteLLMLine], native: dict[str, Any] | None,
               instruction: str) -> dict[str, Any]:
    """Add steps from the LiteLLM log; returns root ``extra`` facts (unanswered failures)."""
    first = lines[0]
    n_user = 0
    for m in first.messages:
        if m.get("role") == "system":
            b.add_system(_text(m.get("content")), timestamp=first.start_time)
        elif m.get("role") == "user":
            b.add_user(_text(m.get("content")), timestamp=first.start_time)
            n_user += 1
        else:
            break
    if n_user == 0:
        b.add_user(instruction, timestamp=first.start_time)
    native_messages = [m for m in (native or {}).get("messages") or [] if isinstance(m, dict)]
    actions_by_id = _native_actions(native)
    ok = [ln for ln in lines if ln.status == "success"]
    next_ok = {a.seq: b_.messages for a, b_ in zip(ok, ok[1:], strict=False)}
    failed: list[dict[str, Any]] = []
    for line in lines:
        if line.status != "success" or line.response is None:
            failed.append({"seq": line.seq, "error": line.error.model_dump(mode="json") if line.error else None})
            continue
        later = next_ok.get(line.seq) or native_messages or None
        added = _added_messages(line, later)
        resp = line.response
        calls: list[tuple[str | None, str, Any]] = [
            (c.id, c.function.name or "", c.function.arguments) for c in resp.tool_calls or []
        ]
        step_extra: dict[str, Any] = {"seq": line.seq, "litellm_call_id": line.litellm_call_id,
                                      "finish_reason": resp.finish_reason}
        if not calls and resp.response_id in actions_by_id:  # text mode: the parsed command
            calls = [(f"call_{b.next_step_id}_{i}", "bash", {"command": a.get("command", "")})
                     for i, a in enumerate(actions_by_id[resp.response_id], start=1)]
            step_extra["tool_calls_parsed_from_text"] = True
        if added is None and later is not None:
            step_extra["observation_unknown"] = "the next conversation does not extend this call's request"
        if failed:
            step_extra["failed_llm_calls"] = failed
        usage = line.usage
        metrics = Metrics(
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            cached_tokens=usage.cached_tokens if usage else None,
            cost_usd=line.cost_usd,
            extra={"reasoning_tokens": usage.reasoning_tokens} if usage and usage.reasoning_tokens else None,
        )
        ids = [c[0] for c in calls if c[0]]
        b.add_agent(
            _text(resp.content), reasoning=resp.reasoning_content, tool_calls=calls,
            observations=_observations(added or [], ids), metrics=metrics, model_name=line.model,
            timestamp=line.end_time, llm_call_count=1 + len(failed), extra=step_extra,
        )
        failed = []
    extra: dict[str, Any] = {}
    if failed:
        extra["unanswered_failed_llm_calls"] = failed
    return extra


def _command_steps(b: TrajectoryBuilder, commands: list[dict[str, Any]]) -> None:
    for i, cmd in enumerate(commands, start=1):
        call_id = f"call_{i}"
        b.add_agent(
            "", tool_calls=[(call_id, "bash", {"command": str(cmd.get("command", ""))})],
            observations=[ObservationResult(source_call_id=call_id, content=str(cmd.get("output") or ""),
                                            extra={"exit_code": cmd.get("exit_code")})],
            llm_call_count=0, extra={"exit_code": cmd.get("exit_code")},
        )


def build_trajectory(ctx: AgentContext, result: AgentResult | None, record: TrialRecord,
                     lines: list[LiteLLMLine] | None = None) -> Trajectory:
    """The trial's ATIF trajectory from whatever the agent left (see the module docstring)."""
    lines = lines if lines is not None else _log_lines(ctx)
    native = _native(ctx) if lines else None
    info = (native or {}).get("info") or {}
    version = str((result.extra if result else {}).get("mini_swe_agent_version") or info.get("mini_version")
                  or TRIALBOOK_VERSION)
    root_extra: dict[str, Any] = {
        "trialbook": {"trial_id": ctx.trial_id, "task": ctx.task.name, "variant": ctx.variant.name,
                      "attempt": ctx.attempt},
    }
    if result is not None:
        root_extra.update({k: v for k, v in (("exit_code", result.exit_code), ("limit", result.limit),
                                               ("exit_status", result.extra.get("exit_status"))) if v is not None})
    b = TrajectoryBuilder(
        record.agent, version, ctx.variant.model, session_id=ctx.trial_id,
        tool_definitions=lines[0].tools if lines and lines[0].tools else None, extra=root_extra,
    )
    if lines:
        root_extra.update(_llm_steps(b, lines, native, ctx.task.instruction))
    else:
        b.add_user(ctx.task.instruction)
        _command_steps(b, list(result.commands) if result else [])
    final = b.compute_final_metrics()
    n_failed = sum(ln.status != "success" for ln in lines)
    if n_failed:
        final = final.model_copy(update={"extra": {"llm_call_failures": n_failed}})
    return b.build(final)


def trajectory_from_log(lines: list[LiteLLMLine], *, agent: str, model: str | None, session_id: str) -> Trajectory:
    """An ATIF trajectory rebuilt from a trial's LiteLLM log alone (no agent-native log, no context).

    For trials whose ``trajectory.json`` is missing: the log is the replayable record of every
    model call, so the conversation, tool calls, observations and usage are recovered, except
    the output of the very last command (no later request carries it).
    """
    if not lines:
        raise ValueError("the LiteLLM log has no lines")
    b = TrajectoryBuilder(agent, TRIALBOOK_VERSION, model, session_id=session_id,
                          tool_definitions=lines[0].tools or None,
                          extra={"trialbook": {"rebuilt_from": "litellm-trajectory.jsonl"}})
    first_user = next((_text(m.get("content")) for m in lines[0].messages if m.get("role") == "user"), "")
    extra = _llm_steps(b, lines, None, first_user)
    final = b.compute_final_metrics()
    n_failed = sum(ln.status != "success" for ln in lines)
    if n_failed or extra:
        final = final.model_copy(update={"extra": {"llm_call_failures": n_failed, **extra}})
    return b.build(final)


def _log_lines(ctx: AgentContext) -> list[LiteLLMLine]:
    path = ctx.paths.litellm_log
    return read_litellm_log(path, ctx.trial_id) if path.exists() else []


def _secrets(ctx: AgentContext) -> list[str]:
    name = ctx.variant.api_key_env
    value = os.environ.get(name) if name else None
    return [value] if value else []


def write_trajectory_sync(ctx: AgentContext, result: AgentResult | None, record: TrialRecord) -> None:
    """Write ``agent/trajectory.json`` (scrubbed) and fill usage from the LiteLLM log if missing."""
    try:
        lines = _log_lines(ctx)
        if lines and (record.usage is None or record.usage.is_empty()):
            record.usage = usage_from_lines(lines)
            ok = [ln for ln in lines if ln.status == "success"]
            record.n_turns = record.n_turns if record.n_turns is not None else len(ok)
            if record.n_tool_calls is None:
                record.n_tool_calls = sum(len(ln.response.tool_calls or []) for ln in ok if ln.response)
        n_failed = sum(ln.status != "success" for ln in lines)
        if n_failed:  # every agent's failed calls, counted alike (the progress display shows them)
            record.extra.setdefault("llm_call_failures", n_failed)
        traj = build_trajectory(ctx, result, record, lines)
        write_json(ctx.paths.trajectory, scrub(traj.to_json_dict(), _secrets(ctx)))
    except Exception as exc:  # noqa: BLE001 - a trajectory problem must not change the trial's outcome
        record.extra["trajectory_error"] = f"{type(exc).__name__}: {exc}"[:1000]


async def write_trajectory(ctx: AgentContext, result: AgentResult | None, record: TrialRecord) -> None:
    """After-agent hook (see ``TrialEnv.after_agent``): the work runs off the event loop."""
    await asyncio.to_thread(write_trajectory_sync, ctx, result, record)
