"""The LiteLLM logger: one line per LLM call in the trial's ``agent/litellm-trajectory.jsonl``.

:class:`LiteLLMTrajectoryLogger` is a LiteLLM ``CustomLogger`` installed once per process
(:func:`install_logger`). A trial opens a :class:`TrialLog`, whose :meth:`TrialLog.call_metadata`
is passed as ``metadata=`` to every ``litellm.completion`` call; LiteLLM hands it back to the
hooks in ``kwargs["litellm_params"]["metadata"]`` (it is not copied into the standard logging
payload), which is how a line finds its trial, its file and its sequence number. Calls without
trialbook metadata are ignored, so the logger coexists with other LiteLLM users.

Secrets never reach the file: keys that name credentials (``api_key``, ``authorization``...)
are dropped, and the call's API key, the trial's registered secrets and every secret-looking
environment value (:func:`trialbook.config.redact_text`) are replaced in all strings.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from litellm.integrations.custom_logger import CustomLogger  # noqa: E402

from trialbook.jsonio import append_jsonl
from trialbook.model.litellm_line import (
    LINE_SCHEMA,
    LineError,
    LineResponse,
    LineUsage,
    LiteLLMLine,
    conversation_from_log,
    read_litellm_log,
    usage_from_lines,
)
from trialbook.run import upstream  # sets what LiteLLM reads at import
from trialbook.run.scrub import SECRET_KEY, scrub

__all__ = [
    "LINE_SCHEMA",
    "LiteLLMLine",
    "LiteLLMTrajectoryLogger",
    "SECRET_KEY",
    "TrialLog",
    "conversation_from_log",
    "install_logger",
    "open_trial_log",
    "read_litellm_log",
    "scrub",
    "usage_from_lines",
]

_log = logging.getLogger("trialbook.llm_log")

META_TRIAL = "trialbook_trial_id"
META_SEQ = "trialbook_seq"
META_STEP = "trialbook_step"
META_PATH = "trialbook_log_path"
_IDENTITY_KEYS = {META_TRIAL, META_SEQ, META_STEP, META_PATH}

# Parameters that are transport details, not part of the model call's meaning.
_DROP_PARAMS = {"tools", "extra_body", "max_retries", "metadata", "stream_options", "api_base",
                "base_url", "timeout", "extra_headers", "headers"}


class TrialLog:
    """One trial's handle on the logger: hands out sequence numbers and waits for lines to land."""

    def __init__(self, logger: LiteLLMTrajectoryLogger, trial_id: str, path: Path,
                 secrets: list[str]) -> None:
        self.logger, self.trial_id, self.path = logger, trial_id, Path(path)
        self.secrets = [s for s in secrets if s]
        self.n_issued = 0
        self.n_written = 0
        self._cond = threading.Condition()

    def call_metadata(self, step: int | None = None) -> dict[str, Any]:
        """Metadata for the next call attempt (one per attempt: a retry gets a new ``seq``)."""
        with self._cond:
            self.n_issued += 1
            seq = self.n_issued
        meta: dict[str, Any] = {META_TRIAL: self.trial_id, META_SEQ: seq, META_PATH: str(self.path)}
        if step is not None:
            meta[META_STEP] = step
        return meta

    def _settled(self) -> None:
        with self._cond:
            self.n_written += 1
            self._cond.notify_all()

    def wait_flushed(self, timeout_s: float = 10.0) -> bool:
        """Block until every issued call is logged (success logging runs in LiteLLM's thread pool).

        Returns False on timeout. A line that could not be written counts as settled.
        """
        with self._cond:
            return self._cond.wait_for(lambda: self.n_written >= self.n_issued, timeout=timeout_s)

    def close(self) -> None:
        """Stop routing this trial's late lines through the registry (they still land by path)."""
        self.logger.trials.pop(self.trial_id, None)


def _iso(value: Any) -> str | None:
    if isinstance(value, int | float) and value > 0:
        value = datetime.fromtimestamp(value, UTC)
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.astimezone()
        return aware.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return None


def _seconds(value: Any) -> float | None:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.astimezone()).timestamp()
    return None


def _get(obj: Any, key: str) -> Any:
    if obj is None:
        return None
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


def _plain(obj: Any) -> Any:
    """Pydantic/OpenAI objects to plain JSON data."""
    if hasattr(obj, "model_dump"):
        try:
            return obj.model_dump(mode="json")
        except Exception:  # noqa: BLE001 - some provider objects refuse json mode
            return obj.model_dump()
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def _response(response_obj: Any, slo: dict[str, Any]) -> tuple[LineResponse | None, LineUsage | None]:
    """The first choice's message and the usage, from the ModelResponse (or the logged payload)."""
    data = _plain(response_obj) if response_obj is not None else slo.get("response")
    if not isinstance(data, dict) or not data.get("choices"):
        return None, None
    choice = data["choices"][0] or {}
    msg = choice.get("message") or {}
    calls = msg.get("tool_calls") or None
    resp = LineResponse(
        role=msg.get("role") or "assistant",
        content=msg.get("content"),
        reasoning_content=msg.get("reasoning_content"),
        tool_calls=[
            {"id": c.get("id"), "type": c.get("type") or "function",
             "function": {"name": _get(c.get("function"), "name"),
                          "arguments": _get(c.get("function"), "arguments")}}
            for c in calls
        ] if calls else None,
        finish_reason=choice.get("finish_reason"),
        response_id=data.get("id"),
        response_model=data.get("model"),
    )
    u = data.get("usage") or {}
    cached = _get(u.get("prompt_tokens_details"), "cached_tokens")
    if cached is None:
        cached = u.get("cache_read_input_tokens")
    usage = LineUsage(
        prompt_tokens=u.get("prompt_tokens"),
        completion_tokens=u.get("completion_tokens"),
        cached_tokens=cached,
        reasoning_tokens=_get(u.get("completion_tokens_details"), "reasoning_tokens"),
        total_tokens=u.get("total_tokens"),
    ) if u else None
    return resp, usage


def _cost(kwargs: dict[str, Any], slo: dict[str, Any], response_obj: Any) -> float | None:
    """LiteLLM's cost, or None when it could not price the model (unknown is not zero)."""
    if slo.get("response_cost_failure_debug_info"):
        return None
    for value in (kwargs.get("response_cost"), slo.get("response_cost"), upstream.hidden_response_cost(response_obj)):
        if isinstance(value, int | float):
            return float(value)
    return None


def _count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as fh:
            return sum(1 for raw in fh if raw.strip())
    except FileNotFoundError:
        return 0


def _model_name(kwargs: dict[str, Any], slo: dict[str, Any]) -> str | None:
    """The model string as requested (``openai/gpt-4o-mini``); LiteLLM strips the provider prefix."""
    hidden = (slo.get("hidden_params") or {}).get("litellm_model_name")
    if hidden:
        return str(hidden)
    model = str(kwargs.get("model") or slo.get("model") or "") or None
    provider = kwargs.get("custom_llm_provider") or slo.get("custom_llm_provider")
    if model and provider and not model.startswith(f"{provider}/"):
        return f"{provider}/{model}"
    return model


def _error(kwargs: dict[str, Any], slo: dict[str, Any]) -> LineError:
    exc = kwargs.get("exception")
    info = slo.get("error_information") or {}
    status = getattr(exc, "status_code", None)
    if status is None and str(info.get("error_code") or "").isdigit():
        status = int(info["error_code"])
    return LineError(
        type=type(exc).__name__ if exc is not None else str(info.get("error_class") or "Error"),
        message=str(exc) if exc is not None else str(slo.get("error_str") or info.get("error_message") or ""),
        status_code=status if isinstance(status, int) else None,
        provider=getattr(exc, "llm_provider", None) or info.get("llm_provider") or None,
    )


class LiteLLMTrajectoryLogger(CustomLogger):
    """Appends one :class:`LiteLLMLine` per call (success or failure) to the calling trial's file."""

    def __init__(self) -> None:
        super().__init__()
        self.trials: dict[str, TrialLog] = {}
        self._seen: dict[str, None] = {}  # litellm_call_id+status already written (sync/async dedupe)
        self._lock = threading.Lock()

    def open_trial(self, trial_id: str, path: str | Path, secrets: list[str] | None = None) -> TrialLog:
        """Register a trial; pass ``handle.call_metadata()`` as ``metadata=`` on each call."""
        handle = TrialLog(self, trial_id, Path(path), list(secrets or []))
        self.trials[trial_id] = handle
        return handle

    # -- LiteLLM hooks -------------------------------------------------------------------

    def log_success_event(self, kwargs: dict, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._record(kwargs, response_obj, start_time, end_time, "success")

    def log_failure_event(self, kwargs: dict, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._record(kwargs, response_obj, start_time, end_time, "failure")

    async def async_log_success_event(self, kwargs: dict, response_obj: Any, start_time: Any,
                                      end_time: Any) -> None:
        self._record(kwargs, response_obj, start_time, end_time, "success")

    async def async_log_failure_event(self, kwargs: dict, response_obj: Any, start_time: Any,
                                      end_time: Any) -> None:
        self._record(kwargs, response_obj, start_time, end_time, "failure")

    # -- building the line ---------------------------------------------------------------

    def _record(self, kwargs: dict, response_obj: Any, start_time: Any, end_time: Any, status: str) -> None:
        """Write the line; never raises (a logging problem must not break the agent's call)."""
        meta = (kwargs.get("litellm_params") or {}).get("metadata") or {}
        if not isinstance(meta, dict) or META_TRIAL not in meta:
            return
        call_id = kwargs.get("litellm_call_id")
        if call_id:  # LiteLLM may run both the sync and the async hook for one call
            with self._lock:
                if f"{call_id}:{status}" in self._seen:
                    return
                self._seen[f"{call_id}:{status}"] = None
                while len(self._seen) > 10_000:
                    self._seen.pop(next(iter(self._seen)))
        handle = self.trials.get(str(meta[META_TRIAL]))
        try:
            self._write(kwargs, response_obj, start_time, end_time, status, meta, handle)
        except Exception:  # noqa: BLE001 - see docstring
            _log.exception("could not write a LiteLLM log line for trial %s", meta.get(META_TRIAL))
        finally:
            if handle is not None:
                handle._settled()  # written or given up: either way nobody should wait for it

    def _write(self, kwargs: dict, response_obj: Any, start_time: Any, end_time: Any, status: str,
               meta: dict[str, Any], handle: TrialLog | None) -> None:
        path = handle.path if handle else Path(str(meta.get(META_PATH) or ""))
        if not str(path) or not path.parent.is_dir():
            return  # an unregistered trial whose directory is gone
        if not isinstance(meta.get(META_SEQ), int):  # caller gave no seq: number by arrival
            n_before = handle.n_written if handle else _count_lines(path)
            meta = {**meta, META_SEQ: n_before + 1}
        secrets = [*(handle.secrets if handle else []), str(kwargs.get("api_key") or "")]
        line = self.build_line(kwargs, response_obj, start_time, end_time, status, meta)
        append_jsonl(path, scrub(line.to_json_dict(), secrets))

    @staticmethod
    def build_line(kwargs: dict, response_obj: Any, start_time: Any, end_time: Any, status: str,
                   meta: dict[str, Any]) -> LiteLLMLine:
        """The :class:`LiteLLMLine` of one hook call (not yet scrubbed)."""
        slo = kwargs.get("standard_logging_object") or {}
        optional = kwargs.get("optional_params") or {}
        params_src = slo.get("model_parameters") or optional
        tools = optional.get("tools") or params_src.get("tools") or kwargs.get("tools")
        params = {k: _plain(v) for k, v in params_src.items() if k not in _DROP_PARAMS and v is not None}
        t0 = slo.get("startTime") or _seconds(start_time)
        t1 = slo.get("endTime") or _seconds(end_time)
        response, usage = (None, None)
        if status == "success":
            response, usage = _response(response_obj, slo)
        seq = meta.get(META_SEQ)
        lp = kwargs.get("litellm_params") or {}
        return LiteLLMLine(
            trial_id=str(meta[META_TRIAL]),
            seq=seq if isinstance(seq, int) else 1,
            step=meta.get(META_STEP) if isinstance(meta.get(META_STEP), int) else None,
            status=status,  # type: ignore[arg-type]
            litellm_call_id=kwargs.get("litellm_call_id"),
            model=_model_name(kwargs, slo),
            provider=kwargs.get("custom_llm_provider") or slo.get("custom_llm_provider"),
            api_base=slo.get("api_base") or lp.get("api_base") or None,
            messages=_plain(kwargs.get("messages") or slo.get("messages") or []),
            tools=_plain(tools) if tools else None,
            params=params,
            response=response,
            usage=usage,
            cost_usd=_cost(kwargs, slo, response_obj) if status == "success" else None,
            start_time=_iso(t0),
            end_time=_iso(t1),
            duration_s=round(t1 - t0, 3) if isinstance(t0, float) and isinstance(t1, float) else None,
            error=_error(kwargs, slo) if status == "failure" else None,
            metadata={k: _plain(v) for k, v in meta.items()
                      if str(k).startswith("trialbook_") and k not in _IDENTITY_KEYS},
        )


_LOGGER: LiteLLMTrajectoryLogger | None = None
_INSTALL_LOCK = threading.Lock()


def install_logger() -> LiteLLMTrajectoryLogger:
    """The process-wide logger, added to ``litellm.callbacks`` on first use (idempotent)."""
    global _LOGGER
    with _INSTALL_LOCK:
        if _LOGGER is None:
            _LOGGER = LiteLLMTrajectoryLogger()
        upstream.add_callback(_LOGGER)
    return _LOGGER


def open_trial_log(trial_id: str, path: str | Path, secrets: list[str] | None = None) -> TrialLog:
    """Install the logger if needed and register one trial's log file."""
    return install_logger().open_trial(trial_id, path, secrets)
