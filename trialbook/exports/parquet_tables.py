"""The four tables of the Parquet export (trials, steps, tool_calls, llm_calls): columns and rows.

Each column is declared once, with its Arrow type and its meaning; the writer builds the
Parquet schema from :data:`TABLES` and ``docs/exports.md`` documents the same list (a test
keeps the two equal). ``trials`` has every column of the index's ``all_trials`` table with
the same name, type and meaning, so a query written for ``trialbook sql`` runs unchanged on
the Parquet files; the other tables join to it on ``(job_name, trial_name)``.

Rows are plain dicts built from what the readers give (:class:`TrialView`: the record, the
ATIF trajectory, and for layouts that keep one the raw LiteLLM log), one trial at a time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from trialbook.errors import TrialbookError
from trialbook.jsonio import jsonl_values
from trialbook.model.litellm_line import LiteLLMLine
from trialbook.model.outcome import Outcome
from trialbook.model.trajectory import Content, Step, Trajectory
from trialbook.model.trial import TrialRecord
from trialbook.results.summary import facts_from_record
from trialbook.sources.base import TrialView
from trialbook.sources.safe import SafeTree

#: Times are UTC instants stored without a zone: DuckDB, Polars and pandas read them as plain
#: timestamps (a zoned column would make DuckDB need pytz to hand rows to Python).
TS = pa.timestamp("us")


@dataclass(frozen=True)
class Column:
    """One column of an exported table: name, Arrow type and what it means."""

    name: str
    type: pa.DataType
    meaning: str


_KEY = [
    Column("job_name", pa.string(), "the job, named as in the index (`name@<hash>` when two job directories share a name)"),
    Column("trial_name", pa.string(), "the trial within its job (its directory name, or what the layout calls it)"),
]

TRIALS = [
    _KEY[0],
    Column("variant_slug", pa.string(), "variant name (agent configuration)"),
    Column("task_slug", pa.string(), "task name"),
    _KEY[1],
    Column("attempt", pa.int64(), "1-based attempt of (variant, task)"),
    Column("success", pa.int64(), "1 resolved, 0 any other outcome, null unfinished (as in the index)"),
    Column("outcome", pa.string(), "resolved, unresolved, agent_error, timeout, verifier_error, infra_error, cancelled; null while running"),
    Column("reward", pa.float64(), "primary reward the verifier gave; null when none"),
    Column("n_turns", pa.int64(), "agent turns"),
    Column("n_tool_calls", pa.int64(), "tool calls the agent made"),
    Column("total_tokens", pa.int64(), "prompt + completion tokens over the trial"),
    Column("cost_usd", pa.float64(), "LLM cost in USD; null when unknown (not 0)"),
    Column("aiu", pa.float64(), "AI units (Copilot's usage measure) when the layout reports them"),
    Column("model", pa.string(), "model of the variant"),
    Column("error", pa.string(), "exception `Type: message`, or the reason of an error outcome"),
    Column("duration_s", pa.float64(), "wall time of the trial in seconds"),
    Column("agent", pa.string(), "agent name"),
    Column("prompt_tokens", pa.int64(), "input tokens, cached ones included"),
    Column("completion_tokens", pa.int64(), "generated tokens"),
    Column("cached_tokens", pa.int64(), "input tokens served from the provider's cache"),
    Column("started_at", pa.string(), "start time, ISO 8601 text as the trial's files give it"),
    Column("finished_at", pa.string(), "end time, ISO 8601 text as the trial's files give it"),
    Column("trial_path", pa.string(), "the trial's directory (or file) as the reader gave it"),
    # -- beyond all_trials
    Column("layout", pa.string(), "layout the trial was read from (native, harbor, velora, swebench, ...)"),
    Column("status", pa.string(), "running or finished"),
    Column("reason", pa.string(), "why the outcome is what it is (errors, verifier problems)"),
    Column("rewards", pa.map_(pa.string(), pa.float64()), "every named reward of the verifier"),
    Column("retries", pa.int64(), "times the trial was retried before this record"),
    Column("exception_type", pa.string(), "class of the exception that ended or spoiled the trial"),
    Column("exception_message", pa.string(), "its message"),
    Column("n_llm_calls", pa.int64(), "successful LLM calls, when known"),
    Column("started_ts", TS, "started_at as a UTC timestamp (text without a zone is taken as UTC; null if unparsable)"),
    Column("finished_ts", TS, "finished_at as a UTC timestamp"),
    Column("n_steps", pa.int64(), "steps of the ATIF trajectory; null when the trial has none"),
    Column("trajectory_error", pa.string(), "why the trajectory could not be read, when it could not"),
]

STEPS = [
    *_KEY,
    Column("step_id", pa.int64(), "position of the step in the trajectory, from 1"),
    Column("source", pa.string(), "system, user or agent"),
    Column("timestamp", TS, "time of the step (UTC)"),
    Column("model_name", pa.string(), "LLM of the step (agent steps; else the trajectory's default model)"),
    Column("message", pa.string(), "the step's message as text (text parts joined by newlines; media parts as `[image: PATH]`/`[audio: PATH]`)"),
    Column("reasoning_content", pa.string(), "the agent's explicit reasoning"),
    Column("n_tool_calls", pa.int64(), "tool calls of the step (rows in tool_calls)"),
    Column("observation", pa.string(), "environment feedback that answers no tool call (e.g. a parsed shell action's output), joined by newlines; tool outputs are in tool_calls.output"),
    Column("prompt_tokens", pa.int64(), "the step's input tokens, cached included"),
    Column("completion_tokens", pa.int64(), "the step's generated tokens"),
    Column("cached_tokens", pa.int64(), "input tokens served from cache"),
    Column("cost_usd", pa.float64(), "cost of the step's LLM call(s)"),
    Column("llm_call_count", pa.int64(), "LLM calls behind the step; 0 = deterministic dispatch"),
    Column("is_copied_context", pa.bool_(), "copied from an earlier trajectory for context"),
]

TOOL_CALLS = [
    *_KEY,
    Column("step_id", pa.int64(), "the agent step that made the call"),
    Column("call_index", pa.int64(), "0-based position of the call within its step"),
    Column("tool_call_id", pa.string(), "id linking the call to its output"),
    Column("function_name", pa.string(), "tool (function) name"),
    Column("arguments", pa.string(), "arguments as a JSON object text (DuckDB `->>`, Polars `str.json_decode`, `json.loads`)"),
    Column("output", pa.string(), "the observation result answering this call, as text; null when none came"),
    Column("timestamp", TS, "time of the step that made the call"),
]

LLM_CALLS = [
    *_KEY,
    Column("seq", pa.int64(), "1-based order of the call within the trial"),
    Column("step", pa.int64(), "the agent's logical step (retries of one query share it)"),
    Column("origin", pa.string(), "`litellm_log`: one row per call attempt of the raw LiteLLM log; `trajectory`: one row per ATIF agent step that called the model (layouts without the log)"),
    Column("n_calls", pa.int64(), "LLM calls the row stands for: 1 for a log line, the step's llm_call_count for a trajectory row"),
    Column("status", pa.string(), "success or failure"),
    Column("model", pa.string(), "model requested"),
    Column("provider", pa.string(), "LiteLLM provider (log rows)"),
    Column("started_ts", TS, "when the call started (log rows; trajectory rows: the step's time)"),
    Column("finished_ts", TS, "when the call ended (log rows)"),
    Column("duration_s", pa.float64(), "call duration in seconds (log rows)"),
    Column("n_messages", pa.int64(), "messages sent in the request (log rows)"),
    Column("prompt_tokens", pa.int64(), "input tokens, cached included"),
    Column("completion_tokens", pa.int64(), "generated tokens"),
    Column("cached_tokens", pa.int64(), "input tokens served from cache"),
    Column("reasoning_tokens", pa.int64(), "part of completion_tokens spent on reasoning (log rows)"),
    Column("total_tokens", pa.int64(), "prompt + completion tokens"),
    Column("cost_usd", pa.float64(), "cost in USD; null when the model has no known price"),
    Column("finish_reason", pa.string(), "why generation stopped (log rows)"),
    Column("n_response_tool_calls", pa.int64(), "tool calls in the reply"),
    Column("error_type", pa.string(), "exception class of a failed call"),
    Column("error_message", pa.string(), "its message"),
    Column("status_code", pa.int64(), "HTTP status of a failed call, if any"),
]

TABLES: dict[str, list[Column]] = {"trials": TRIALS, "steps": STEPS, "tool_calls": TOOL_CALLS, "llm_calls": LLM_CALLS}


def schema(table: str) -> pa.Schema:
    """The Arrow schema of one exported table."""
    return pa.schema([pa.field(c.name, c.type) for c in TABLES[table]])


def parse_ts(value: str | None) -> datetime | None:
    """An ISO 8601 time as a naive UTC datetime (text without a zone is taken as UTC); None when absent or unparsable."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is None else parsed.astimezone(UTC).replace(tzinfo=None)


def content_text(content: Content | None) -> str | None:
    """ATIF content as text: strings as they are, parts joined by newlines, media as a placeholder."""
    if content is None or isinstance(content, str):
        return content
    out = []
    for part in content:
        if part.type == "text":
            out.append(part.text or "")
        else:
            out.append(f"[{part.type}: {part.source.path if part.source else ''}]")
    return "\n".join(out)


def trial_row(job_name: str, view: TrialView, n_steps: int | None, trajectory_error: str | None) -> dict[str, Any]:
    """The ``trials`` row of one trial (the ``all_trials`` columns are computed as the index does)."""
    r: TrialRecord = view.record
    f = facts_from_record(r)
    u = r.usage
    exc = r.exception
    return {
        "job_name": job_name, "variant_slug": r.variant, "task_slug": r.task, "trial_name": r.trial_name,
        "attempt": r.attempt, "success": None if r.outcome is None else int(r.outcome == Outcome.RESOLVED),
        "outcome": None if r.outcome is None else str(r.outcome), "reward": r.reward, "n_turns": r.n_turns,
        "n_tool_calls": r.n_tool_calls, "total_tokens": f.total_tokens, "cost_usd": f.cost_usd, "aiu": f.aiu,
        "model": r.model, "error": f.error, "duration_s": r.duration_s, "agent": r.agent,
        "prompt_tokens": u.prompt_tokens if u else None, "completion_tokens": u.completion_tokens if u else None,
        "cached_tokens": u.cached_tokens if u else None, "started_at": r.started_at, "finished_at": r.finished_at,
        "trial_path": str(view.path), "layout": view.layout, "status": r.status, "reason": r.reason,
        "rewards": list((r.rewards or {}).items()) or None, "retries": r.retries,
        "exception_type": exc.type if exc else None, "exception_message": exc.message if exc else None,
        "n_llm_calls": u.n_llm_calls if u else None, "started_ts": parse_ts(r.started_at),
        "finished_ts": parse_ts(r.finished_at), "n_steps": n_steps, "trajectory_error": trajectory_error,
    }


def _step_row(key: dict[str, str], step: Step, default_model: str | None) -> dict[str, Any]:
    m = step.metrics
    answered = {c.tool_call_id for c in step.tool_calls or ()}
    feedback = [content_text(r.content) or "" for r in (step.observation.results if step.observation else ())
                if r.source_call_id is None or r.source_call_id not in answered]
    return {
        **key, "step_id": step.step_id, "source": step.source, "timestamp": parse_ts(step.timestamp),
        "model_name": step.model_name or (default_model if step.source == "agent" else None),
        "message": content_text(step.message), "reasoning_content": step.reasoning_content,
        "n_tool_calls": len(step.tool_calls or ()), "observation": "\n".join(feedback) if feedback else None,
        "prompt_tokens": m.prompt_tokens if m else None, "completion_tokens": m.completion_tokens if m else None,
        "cached_tokens": m.cached_tokens if m else None, "cost_usd": m.cost_usd if m else None,
        "llm_call_count": step.llm_call_count, "is_copied_context": step.is_copied_context,
    }


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def trajectory_rows(key: dict[str, str], traj: Trajectory) -> tuple[list[dict], list[dict], list[dict]]:
    """(steps, tool_calls, llm_calls-from-the-trajectory) rows of one trial's root trajectory."""
    default_model = traj.agent.model_name
    steps, calls, llm = [], [], []
    for step in traj.steps:
        steps.append(_step_row(key, step, default_model))
        ts = parse_ts(step.timestamp)
        outputs = {r.source_call_id: content_text(r.content) for r in (step.observation.results if step.observation else ())
                   if r.source_call_id is not None}
        for i, call in enumerate(step.tool_calls or ()):
            calls.append({**key, "step_id": step.step_id, "call_index": i, "tool_call_id": call.tool_call_id,
                          "function_name": call.function_name, "arguments": _json_text(call.arguments),
                          "output": outputs.get(call.tool_call_id), "timestamp": ts})
        if step.source == "agent" and step.llm_call_count != 0 and (step.metrics is not None or step.llm_call_count):
            m = step.metrics
            total = None if m is None or m.prompt_tokens is None or m.completion_tokens is None \
                else m.prompt_tokens + m.completion_tokens
            llm.append({**key, "seq": len(llm) + 1, "step": step.step_id, "origin": "trajectory",
                        "n_calls": step.llm_call_count or 1, "status": "success",
                        "model": step.model_name or default_model, "started_ts": ts,
                        "prompt_tokens": m.prompt_tokens if m else None,
                        "completion_tokens": m.completion_tokens if m else None,
                        "cached_tokens": m.cached_tokens if m else None, "total_tokens": total,
                        "cost_usd": m.cost_usd if m else None, "n_response_tool_calls": len(step.tool_calls or ())})
    return steps, calls, llm


def log_rows(key: dict[str, str], tree: SafeTree, path: Any) -> list[dict[str, Any]]:
    """``llm_calls`` rows of a raw LiteLLM log (read without following links), in call order."""
    try:
        lines = [LiteLLMLine.model_validate(obj) for _, obj in jsonl_values(tree.read_bytes(path), path)]
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise TrialbookError(f"{path}: not a LiteLLM log line ({str(exc).splitlines()[0]})") from None
    rows = []
    for ln in sorted(lines, key=lambda ln: ln.seq):
        u, resp, err = ln.usage, ln.response, ln.error
        rows.append({
            **key, "seq": ln.seq, "step": ln.step, "origin": "litellm_log", "n_calls": 1, "status": ln.status,
            "model": ln.model, "provider": ln.provider, "started_ts": parse_ts(ln.start_time),
            "finished_ts": parse_ts(ln.end_time), "duration_s": ln.duration_s, "n_messages": len(ln.messages),
            "prompt_tokens": u.prompt_tokens if u else None, "completion_tokens": u.completion_tokens if u else None,
            "cached_tokens": u.cached_tokens if u else None, "reasoning_tokens": u.reasoning_tokens if u else None,
            "total_tokens": u.total_tokens if u else None, "cost_usd": ln.cost_usd,
            "finish_reason": resp.finish_reason if resp else None,
            "n_response_tool_calls": len(resp.tool_calls or ()) if resp else None,
            "error_type": err.type if err else None, "error_message": err.message if err else None,
            "status_code": err.status_code if err else None,
        })
    return rows
