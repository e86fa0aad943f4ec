"""GitHub Copilot CLI logs: session ``events.jsonl``, ``copilot-cli.jsonl``/``.txt`` and OTel spans.

Spec 004 names the Copilot session log (``agent/copilot-session/<id>/events.jsonl``) the primary
source for turns, tool calls, tokens and AIU; this module reads it (and the OTel file export,
``agent/copilot-otel.jsonl``) into summaries and converts it to ATIF. It is layout-neutral: the
Harbor/Pier reader and ``analyze --file`` both use it.

Event shapes follow github-copilot-sdk's ``session-events.schema.json`` (camelCase keys inside
``data``). Units and meanings chosen here:

* ``inputTokens`` includes cache reads (as ATIF ``prompt_tokens`` does); ``cacheReadTokens``
  becomes ``cached_tokens``.
* AIU: Copilot reports nano-AIU (``totalNanoAiu``); :attr:`Usage.aiu` holds AIU
  (= nano-AIU / 1e9); the raw nano value is kept in the summary.
* Copilot's request ``cost`` counts premium requests, not dollars, so ``cost_usd`` stays None.
* Totals come from ``session.shutdown`` when the session ended; a session cut short (no
  shutdown) is summed from its ``assistant.usage`` events instead.
* Turns = ``assistant.turn_start`` events (else assistant messages); tool calls =
  ``tool.execution_start`` events (else the tool requests of assistant messages).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from trialbook.errors import SourceError
from trialbook.jsonio import jsonl_values
from trialbook.model.trajectory import FinalMetrics, Metrics, ObservationResult, Trajectory
from trialbook.model.trajectory_builder import TrajectoryBuilder
from trialbook.model.usage import Usage
from trialbook.sources.safe import SafeTree

NANO = 1e-9


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _add(total: int | float | None, value: int | float | None) -> int | float | None:
    if value is None:
        return total
    return value if total is None else total + value


# -- files -----------------------------------------------------------------------------


def session_logs(tree: SafeTree, agent_dir: Path) -> list[Path]:
    """``agent/copilot-session/<session-id>/events.jsonl`` files of a trial, sorted by path."""
    return tree.rglob(agent_dir / "copilot-session", "events.jsonl", max_depth=2)


def read_events(tree: SafeTree, path: Path) -> list[dict[str, Any]]:
    """The event objects of a Copilot JSONL log (non-object lines are skipped; truncation warns)."""
    return [e for e in tree.iter_jsonl(path) if isinstance(e, dict)]


def read_cli_jsonl(tree: SafeTree, path: Path, problems: list[str]) -> list[dict[str, Any]]:
    """Event objects of ``copilot-cli.jsonl``, skipping non-JSON lines (the CLI merges stderr in).

    Skipped lines are counted in ``problems``; an unreadable file adds its error there too.
    """
    try:
        data = tree.read_bytes(path)
    except SourceError as exc:
        problems.append(str(exc)[:300])
        return []
    invalid: list[int] = []
    events = [value for _, value in jsonl_values(data, path, partial_last_line=False,
                                                 on_invalid=lambda number, _: invalid.append(number))
              if isinstance(value, dict)]
    skipped = len(invalid)
    if skipped and events:
        problems.append(f"{path}: {skipped} non-JSON line(s) skipped")
    return events


def cli_error(text: str) -> str | None:
    """The first ``Error: ...`` line of Copilot CLI output (auth and start-up failures), if any."""
    for line in text.splitlines():
        if line.strip().startswith("Error:"):
            return line.strip()[:300]
    return None


# -- session summary ---------------------------------------------------------------------


@dataclass
class CopilotSummary:
    """What a Copilot session log says about a trial: identity, counts and usage (None = unknown)."""

    session_id: str | None = None
    model: str | None = None
    copilot_version: str | None = None
    n_events: int = 0
    n_turns: int | None = None
    n_tool_calls: int | None = None
    n_llm_calls: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    total_nano_aiu: float | None = None
    premium_requests: float | None = None
    shutdown_type: str | None = None
    complete: bool = False
    errors: list[str] = field(default_factory=list)

    def usage(self) -> Usage:
        """The summary as a :class:`Usage` (AIU converted from nano-AIU)."""
        total = None
        if self.input_tokens is not None and self.output_tokens is not None:
            total = self.input_tokens + self.output_tokens
        return Usage(
            prompt_tokens=self.input_tokens,
            completion_tokens=self.output_tokens,
            cached_tokens=self.cache_read_tokens,
            total_tokens=total,
            n_llm_calls=self.n_llm_calls,
            aiu=None if self.total_nano_aiu is None else self.total_nano_aiu * NANO,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (kept in ``TrialRecord.extra["copilot"]``)."""
        return {k: v for k, v in self.__dict__.items() if v is not None and v != []}


def merge_summaries(summaries: list[CopilotSummary]) -> CopilotSummary:
    """Several sessions of one trial added up (identity from the first; counts and usage summed)."""
    if len(summaries) == 1:
        return summaries[0]
    out = CopilotSummary(session_id=summaries[0].session_id, model=summaries[0].model,
                         copilot_version=summaries[0].copilot_version,
                         complete=all(s.complete for s in summaries))
    for name in ("n_events", "n_turns", "n_tool_calls", "n_llm_calls", "input_tokens", "output_tokens",
                 "cache_read_tokens", "cache_write_tokens", "total_nano_aiu", "premium_requests"):
        total = None
        for s in summaries:
            total = _add(total, getattr(s, name))
        setattr(out, name, total if total is not None or name != "n_events" else 0)
    out.errors = [e for s in summaries for e in s.errors]
    out.shutdown_type = summaries[-1].shutdown_type
    return out


def summarize_events(events: Iterable[dict[str, Any]]) -> CopilotSummary:
    """Summarise one session's events (see the module docstring for the counting rules)."""
    s = CopilotSummary()
    turns = messages = starts = requested = 0
    sums: dict[str, Any] = {"input": None, "output": None, "read": None, "write": None, "nano": None, "calls": 0}
    shutdown: dict[str, Any] | None = None
    for event in events:
        s.n_events += 1
        kind, data = event.get("type"), _dict(event.get("data"))
        if kind == "session.start":
            s.session_id = _str(data.get("sessionId")) or s.session_id
            s.model = _str(data.get("selectedModel")) or s.model
            s.copilot_version = _str(data.get("copilotVersion")) or s.copilot_version
        elif kind == "assistant.turn_start":
            turns += 1
        elif kind == "assistant.message":
            messages += 1
            requested += len(_list(data.get("toolRequests")))
            s.model = s.model or _str(data.get("model"))
        elif kind == "tool.execution_start":
            starts += 1
        elif kind == "assistant.usage":
            sums["calls"] += 1
            sums["input"] = _add(sums["input"], _int(data.get("inputTokens")))
            sums["output"] = _add(sums["output"], _int(data.get("outputTokens")))
            sums["read"] = _add(sums["read"], _int(data.get("cacheReadTokens")))
            sums["write"] = _add(sums["write"], _int(data.get("cacheWriteTokens")))
            sums["nano"] = _add(sums["nano"], _float(_dict(data.get("copilotUsage")).get("totalNanoAiu")))
            s.model = s.model or _str(data.get("model"))
        elif kind == "session.error":
            s.errors.append(f"{data.get('errorType', 'error')}: {data.get('message', '')}"[:300])
        elif kind == "session.shutdown":
            shutdown = data
        elif kind == "result":  # copilot-cli.jsonl's closing event (not in events.jsonl)
            s.session_id = s.session_id or _str(event.get("sessionId"))
    s.n_turns = turns or messages or None
    s.n_tool_calls = starts or requested or (0 if messages else None)
    if shutdown is not None:
        _apply_shutdown(s, shutdown)
    else:
        s.input_tokens, s.output_tokens = sums["input"], sums["output"]
        s.cache_read_tokens, s.cache_write_tokens = sums["read"], sums["write"]
        s.total_nano_aiu = sums["nano"]
        s.n_llm_calls = sums["calls"] or None
    return s


def _apply_shutdown(s: CopilotSummary, data: dict[str, Any]) -> None:
    """Session totals from ``session.shutdown`` (per-model metrics summed)."""
    s.complete = True
    s.shutdown_type = _str(data.get("shutdownType"))
    s.model = s.model or _str(data.get("currentModel"))
    s.premium_requests = _float(data.get("totalPremiumRequests"))
    nano = _float(data.get("totalNanoAiu"))
    calls = None
    for metric in _dict(data.get("modelMetrics")).values():
        usage = _dict(_dict(metric).get("usage"))
        s.input_tokens = _add(s.input_tokens, _int(usage.get("inputTokens")))
        s.output_tokens = _add(s.output_tokens, _int(usage.get("outputTokens")))
        s.cache_read_tokens = _add(s.cache_read_tokens, _int(usage.get("cacheReadTokens")))
        s.cache_write_tokens = _add(s.cache_write_tokens, _int(usage.get("cacheWriteTokens")))
        calls = _add(calls, _int(_dict(_dict(metric).get("requests")).get("count")))
        if data.get("totalNanoAiu") is None:
            nano = _add(nano, _float(_dict(metric).get("totalNanoAiu")))
    s.total_nano_aiu = nano
    s.n_llm_calls = calls
    if data.get("errorReason"):
        s.errors.append(f"shutdown: {data.get('errorReason')}"[:300])


# -- conversion to ATIF ------------------------------------------------------------------


def _result_text(data: dict[str, Any]) -> str:
    """A tool result's text: ``result.content``, plus the error message of a failed call."""
    text = _str(_dict(data.get("result")).get("content")) or ""
    error = _dict(data.get("error"))
    if error:
        message = _str(error.get("message")) or str(error)
        text = f"{text}\n{message}" if text else message
    return text


def _metrics(data: dict[str, Any]) -> Metrics:
    extra = {"nano_aiu": _float(_dict(data.get("copilotUsage")).get("totalNanoAiu")),
             "cache_write_tokens": _int(data.get("cacheWriteTokens")),
             "finish_reason": _str(data.get("finishReason")), "model": _str(data.get("model"))}
    return Metrics(prompt_tokens=_int(data.get("inputTokens")), completion_tokens=_int(data.get("outputTokens")),
                   cached_tokens=_int(data.get("cacheReadTokens")),
                   extra={k: v for k, v in extra.items() if v is not None} or None)


def events_to_trajectory(
    events: list[dict[str, Any]], *, agent_name: str = "copilot-cli", agent_version: str | None = None,
    model: str | None = None,
) -> Trajectory | None:
    """ATIF for one Copilot session (None when it holds no message at all).

    Each ``assistant.message`` becomes an agent step with its ``toolRequests``; results
    (``tool.execution_complete``) join the step that made the call, usage events join the
    message with the same ``apiCallId`` (else the latest message without metrics). Session
    errors and aborts become system steps; totals come from all usage events.
    """
    summary = summarize_events(events)
    specs: list[dict[str, Any]] = []
    by_call: dict[str, dict[str, Any]] = {}
    by_api: dict[str, dict[str, Any]] = {}
    for event in events:
        kind, data, ts = event.get("type"), _dict(event.get("data")), _str(event.get("timestamp"))
        if kind in ("system.message", "user.message") and _str(data.get("content")) is not None:
            specs.append({"source": "system" if kind == "system.message" else "user",
                          "text": data["content"], "ts": ts})
        elif kind == "assistant.message":
            calls = [(_str(r.get("toolCallId")), _str(r.get("name")) or "unknown", r.get("arguments"))
                     for r in map(_dict, _list(data.get("toolRequests")))]
            spec = {"source": "agent", "text": _str(data.get("content")) or "", "ts": ts, "calls": calls,
                    "results": [], "metrics": None, "model": _str(data.get("model")),
                    "reasoning": _str(data.get("reasoningText"))}
            specs.append(spec)
            by_call.update({cid: spec for cid, _, _ in calls if cid})
            if _str(data.get("apiCallId")):
                by_api[data["apiCallId"]] = spec
        elif kind == "tool.execution_complete":
            cid = _str(data.get("toolCallId"))
            result = (cid, _result_text(data))
            if cid in by_call:
                by_call[cid]["results"].append(result)
            else:
                specs.append({"source": "system", "text": f"tool result for unknown call {cid!r}", "ts": ts,
                              "orphan": result})
        elif kind == "assistant.usage":
            spec = by_api.get(_str(data.get("apiCallId")) or "")
            if spec is None:
                spec = next((s for s in reversed(specs) if s["source"] == "agent" and s["metrics"] is None), None)
            if spec is not None and spec["metrics"] is None:
                spec["metrics"] = _metrics(data)
        elif kind in ("session.error", "abort"):
            text = f"{kind}: {data.get('errorType', '')} {data.get('message') or data.get('reason') or ''}".strip()
            specs.append({"source": "system", "text": text, "ts": ts})
    if not specs:
        return None
    builder = TrajectoryBuilder(agent_name, agent_version or summary.copilot_version or "unknown",
                                model or summary.model, session_id=summary.session_id,
                                notes="converted by trialbook from Copilot session events")
    for spec in specs:
        if spec["source"] == "agent":
            builder.add_agent(spec["text"], reasoning=spec["reasoning"], tool_calls=spec["calls"],
                              observations=spec["results"], metrics=spec["metrics"],
                              model_name=spec["model"], timestamp=spec["ts"])
        elif spec["source"] == "user":
            builder.add_user(spec["text"], timestamp=spec["ts"])
        else:
            orphan = spec.get("orphan")
            observations = [ObservationResult(content=orphan[1], extra={"tool_call_id": orphan[0]})] if orphan else ()
            builder.add_system(spec["text"], timestamp=spec["ts"], observations=observations)
    extra = {k: v for k, v in {"total_nano_aiu": summary.total_nano_aiu,
                                "premium_requests": summary.premium_requests,
                                "shutdown_type": summary.shutdown_type}.items() if v is not None}
    final = FinalMetrics(total_prompt_tokens=summary.input_tokens, total_completion_tokens=summary.output_tokens,
                         total_cached_tokens=summary.cache_read_tokens, total_steps=len(builder.steps),
                         extra=extra or None)
    return builder.build(final)


def convert_or_raise(events: list[dict[str, Any]], path: Path, **kwargs: Any) -> Trajectory | None:
    """:func:`events_to_trajectory`, with any failure on odd data reported as SourceError naming ``path``."""
    try:
        return events_to_trajectory(events, **kwargs)
    except (ValidationError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceError(f"cannot convert Copilot events to ATIF: {first}"[:500], path) from None


# -- OpenTelemetry spans -----------------------------------------------------------------


def _otlp_value(value: Any) -> Any:
    """The Python value of an OTLP ``AnyValue`` object (``{"intValue": "12"}`` -> 12)."""
    if not isinstance(value, dict):
        return value
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in value:
            return value[key]
    if "intValue" in value:
        try:
            return int(value["intValue"])
        except (TypeError, ValueError):
            return None
    if "arrayValue" in value:
        return [_otlp_value(v) for v in _list(_dict(value["arrayValue"]).get("values"))]
    return None


def _attributes(raw: Any) -> dict[str, Any]:
    """Span attributes as a flat dict, from either a plain object or OTLP's key/value list."""
    if isinstance(raw, dict):
        return raw
    out: dict[str, Any] = {}
    for item in _list(raw):
        item = _dict(item)
        if isinstance(item.get("key"), str):
            out[item["key"]] = _otlp_value(item.get("value"))
    return out


def iter_spans(records: Iterable[Any]) -> list[dict[str, Any]]:
    """Spans of an OTel file export: one span per line, or OTLP ``resourceSpans`` batches."""
    spans: list[dict[str, Any]] = []
    for record in records:
        record = _dict(record)
        if "resourceSpans" in record:
            for rs in map(_dict, _list(record["resourceSpans"])):
                for ss in map(_dict, _list(rs.get("scopeSpans"))):
                    spans.extend(_dict(sp) for sp in _list(ss.get("spans")))
        elif "name" in record or "attributes" in record:
            spans.append(record)
    return [{**sp, "attributes": _attributes(sp.get("attributes"))} for sp in spans]


def _nano_aiu(attrs: dict[str, Any]) -> float | None:
    for key, value in attrs.items():
        if key.endswith("nano_aiu"):
            return _float(value)
    return None


def summarize_otel(records: Iterable[Any]) -> CopilotSummary:
    """Usage from GenAI spans: ``chat`` spans summed (else the ``invoke_agent`` span's totals)."""
    s = CopilotSummary()
    spans = iter_spans(records)
    s.n_events = len(spans)
    chats = [sp for sp in spans if sp["attributes"].get("gen_ai.operation.name") == "chat"]
    agents = [sp for sp in spans if sp["attributes"].get("gen_ai.operation.name") == "invoke_agent"]
    tools = [sp for sp in spans if sp["attributes"].get("gen_ai.operation.name") == "execute_tool"]
    for sp in chats or agents:
        a = sp["attributes"]
        s.input_tokens = _add(s.input_tokens, _int(a.get("gen_ai.usage.input_tokens")))
        s.output_tokens = _add(s.output_tokens, _int(a.get("gen_ai.usage.output_tokens")))
        cache_read = a.get("gen_ai.usage.cache_read.input_tokens", a.get("gen_ai.usage.cache_read_input_tokens"))
        s.cache_read_tokens = _add(s.cache_read_tokens, _int(cache_read))
        s.cache_write_tokens = _add(s.cache_write_tokens, _int(a.get("gen_ai.usage.cache_creation.input_tokens")))
        s.total_nano_aiu = _add(s.total_nano_aiu, _nano_aiu(a))
    s.n_llm_calls = len(chats) or None
    s.n_tool_calls = len(tools) or None
    for sp in spans:
        a = sp["attributes"]
        s.session_id = s.session_id or _str(a.get("gen_ai.conversation.id"))
        s.model = s.model or _str(a.get("gen_ai.response.model")) or _str(a.get("gen_ai.request.model"))
    return s
