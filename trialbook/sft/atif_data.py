"""ATIF JSON data checked against the trajectory models without building them (SFT's fast path).

Validating a trajectory into pydantic models costs more than the whole mapping to SFT
messages, and SFT conversion only reads the data. :func:`checked_trajectory_data` accepts
parsed JSON whose every value already has its field's exact type (no coercion to apply) and
that passes every rule of :class:`~trialbook.model.trajectory.Trajectory`; every value the
mapping reads is then exactly what validation would give back, and the data is mapped as it
is (an int in a float field such as ``cost_usd``, which validation would make a float, is
accepted: the mapping does not read it). Anything else (content
parts, subagents, a value pydantic would coerce, any invalid input) returns None, and the
caller validates with the models as before: same result, same errors.
"""

from __future__ import annotations

from typing import Any

from trialbook.model.trajectory import (
    AGENT_ONLY_FIELDS,
    ATIF_READ_VERSIONS,
    NO_LLM_FORBIDDEN_FIELDS,
    is_iso8601,
)

_TRAJECTORY_KEYS = frozenset({
    "schema_version", "session_id", "trajectory_id", "agent", "steps", "notes", "final_metrics",
    "continued_trajectory_ref", "extra", "subagent_trajectories",
})
_AGENT_KEYS = frozenset({"name", "version", "model_name", "tool_definitions", "extra"})
_STEP_KEYS = frozenset({
    "step_id", "timestamp", "source", "model_name", "reasoning_effort", "message", "reasoning_content",
    "tool_calls", "observation", "metrics", "is_copied_context", "llm_call_count", "extra",
})
_CALL_KEYS = frozenset({"tool_call_id", "function_name", "arguments", "extra"})
_OBSERVATION_KEYS = frozenset({"results"})
_RESULT_KEYS = frozenset({"source_call_id", "content", "subagent_trajectory_ref", "extra"})
_METRICS_INTS = frozenset({"prompt_tokens", "completion_tokens", "cached_tokens"})
_METRICS_KEYS = _METRICS_INTS | {"cost_usd", "prompt_token_ids", "completion_token_ids", "logprobs", "extra"}
_FINAL_INTS = frozenset({"total_prompt_tokens", "total_completion_tokens", "total_cached_tokens", "total_steps"})
_FINAL_KEYS = _FINAL_INTS | {"total_cost_usd", "extra"}
_SOURCES = frozenset({"system", "user", "agent"})
_VERSIONS = frozenset(ATIF_READ_VERSIONS)


class _Unchecked(Exception):
    """The data is not in the shape this fast path vouches for."""


def _str(value: Any, optional: bool = True) -> None:
    if not (type(value) is str or (optional and value is None)):
        raise _Unchecked


def _int(value: Any, minimum: int | None = None) -> None:
    if value is None:
        return
    if type(value) is not int or (minimum is not None and value < minimum):
        raise _Unchecked


def _number(value: Any) -> None:
    if value is not None and type(value) not in (int, float):
        raise _Unchecked


def _mapping(value: Any, optional: bool = True) -> None:
    """A JSON object (its keys are strings, as JSON's are); None when ``optional``."""
    if not (type(value) is dict or (optional and value is None)):
        raise _Unchecked


def _keys(obj: Any, allowed: frozenset[str]) -> None:
    if type(obj) is not dict or not allowed.issuperset(obj):
        raise _Unchecked


def _metrics(metrics: Any) -> None:
    if metrics is None:
        return
    _keys(metrics, _METRICS_KEYS)
    for name in _METRICS_INTS.intersection(metrics):
        _int(metrics[name])
    _number(metrics.get("cost_usd"))
    for name in ("prompt_token_ids", "completion_token_ids"):
        ids = metrics.get(name)
        if ids is not None and (type(ids) is not list or any(type(i) is not int for i in ids)):
            raise _Unchecked
    logprobs = metrics.get("logprobs")
    if logprobs is not None and (type(logprobs) is not list or any(type(v) not in (int, float) for v in logprobs)):
        raise _Unchecked
    _mapping(metrics.get("extra"))


def _step(step: Any, position: int) -> None:
    """One step (the hot loop: checks written out rather than called, as there are tens per trajectory)."""
    if type(step) is not dict or not _STEP_KEYS.issuperset(step):
        raise _Unchecked
    get = step.get
    step_id, source, timestamp = get("step_id"), get("source"), get("timestamp")
    if type(step_id) is not int or step_id != position or type(source) is not str or source not in _SOURCES:
        raise _Unchecked
    if timestamp is not None and (type(timestamp) is not str or not is_iso8601(timestamp)):
        raise _Unchecked
    model_name, effort, reasoning = get("model_name"), get("reasoning_effort"), get("reasoning_content")
    if ((model_name is not None and type(model_name) is not str)
            or (effort is not None and type(effort) not in (str, float))
            or (reasoning is not None and type(reasoning) is not str)
            or type(get("message")) is not str):  # content parts (and a missing message) take the model path
        raise _Unchecked
    calls = get("tool_calls")
    call_ids = set()
    if calls is not None:
        if type(calls) is not list:
            raise _Unchecked
        for call in calls:
            if type(call) is not dict or not _CALL_KEYS.issuperset(call):
                raise _Unchecked
            call_id, extra = call.get("tool_call_id"), call.get("extra")
            if (type(call_id) is not str or type(call.get("function_name")) is not str
                    or type(call.get("arguments")) is not dict or (extra is not None and type(extra) is not dict)):
                raise _Unchecked
            call_ids.add(call_id)
    observation = get("observation")
    if observation is not None:
        if type(observation) is not dict or not _OBSERVATION_KEYS.issuperset(observation):
            raise _Unchecked
        results = observation.get("results")
        if type(results) is not list:
            raise _Unchecked
        for result in results:
            if type(result) is not dict or not _RESULT_KEYS.issuperset(result):
                raise _Unchecked
            call_id, content, extra = result.get("source_call_id"), result.get("content"), result.get("extra")
            if ((call_id is not None and (type(call_id) is not str or call_id not in call_ids))
                    or (content is not None and type(content) is not str)
                    or result.get("subagent_trajectory_ref") is not None
                    or (extra is not None and type(extra) is not dict)):
                raise _Unchecked
    metrics = get("metrics")
    if metrics is not None and not (type(metrics) is dict and _METRICS_INTS.issuperset(metrics)
                                    and all(type(v) is int for v in metrics.values())):
        _metrics(metrics)  # the usual token counts alone are checked above; anything else here
    copied, llm_calls, extra = get("is_copied_context"), get("llm_call_count"), get("extra")
    if ((copied is not None and type(copied) is not bool)
            or (llm_calls is not None and (type(llm_calls) is not int or llm_calls < 0))
            or (extra is not None and type(extra) is not dict)):
        raise _Unchecked
    if source != "agent":
        if any(get(name) is not None for name in AGENT_ONLY_FIELDS):
            raise _Unchecked
    elif llm_calls == 0 and any(get(name) is not None for name in NO_LLM_FORBIDDEN_FIELDS):
        raise _Unchecked


def _check(data: Any) -> None:
    _keys(data, _TRAJECTORY_KEYS)
    version = data.get("schema_version")
    if type(version) is not str or version not in _VERSIONS:
        raise _Unchecked
    for name in ("session_id", "trajectory_id", "notes", "continued_trajectory_ref"):
        _str(data.get(name))
    _mapping(data.get("extra"))
    if data.get("subagent_trajectories") is not None:
        raise _Unchecked
    final = data.get("final_metrics")
    if final is not None:
        _keys(final, _FINAL_KEYS)
        for name in _FINAL_INTS:
            _int(final.get(name))
        _int(final.get("total_steps"), 0)
        _number(final.get("total_cost_usd"))
        _mapping(final.get("extra"))
    agent = data.get("agent")
    _keys(agent, _AGENT_KEYS)
    _str(agent.get("name"), optional=False)
    _str(agent.get("version"), optional=False)
    _str(agent.get("model_name"))
    definitions = agent.get("tool_definitions")
    if definitions is not None and (type(definitions) is not list or any(type(d) is not dict for d in definitions)):
        raise _Unchecked
    _mapping(agent.get("extra"))
    steps = data.get("steps")
    if type(steps) is not list or not steps:
        raise _Unchecked
    for position, step in enumerate(steps, 1):
        _step(step, position)


def checked_trajectory_data(data: Any) -> dict[str, Any] | None:
    """``data`` (parsed from an ATIF JSON file) when validating it into the models would accept it
    and give back the same values; None when the models must decide (see the module docstring)."""
    try:
        _check(data)
    except _Unchecked:
        return None
    return data
