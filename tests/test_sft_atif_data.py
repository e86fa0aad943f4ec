"""SFT's fast paths. Over ATIF JSON: what it accepts, the models accept and map the same; what
it cannot vouch for (invalid or unusual data) goes to the models, so conversion results and
errors are those of validation. The im.jsonl line assembled from parts is the record's bytes."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError
from test_sft_cases import CASES
from test_sft_parallel import make_job

from trialbook.model.trajectory import Trajectory
from trialbook.sft import ConvertOptions
from trialbook.sft.atif_data import checked_trajectory_data
from trialbook.sft.converter import _record_json
from trialbook.sft.job import convert_job
from trialbook.sft.messages import SkipTrajectory, dumps_json, trajectory_to_messages

#: Replacement values tried at every place of a trajectory: wrong types, bounds, coercible values.
REPLACEMENTS: list[Any] = [None, "", "x", "2025-01-01T00:00:00Z", 0, 1, 2, -1, 1.0, 1.5, True, False, [], [1], [{}],
                           {}, {"a": 1}, "agent", "user", "ATIF-v1.7", "ATIF-v9.9", "call_0"]


def _places(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _places(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _places(item, (*path, index))


def _mutations(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every single change: each place replaced by each value, deleted, or given an unknown key."""
    for path in _places(data):
        if not path:
            continue
        *head, last = path
        for new in [*REPLACEMENTS, "DELETE"]:
            mutated = copy.deepcopy(data)
            parent = mutated
            for key in head:
                parent = parent[key]
            if new == "DELETE":
                if isinstance(parent, dict):
                    del parent[last]
                else:
                    parent.pop(last)
            else:
                parent[last] = new
            yield mutated
        mutated = copy.deepcopy(data)
        target = mutated
        for key in path:
            target = target[key]
        if isinstance(target, dict):
            target["unknown_key"] = 1
            yield mutated


def _mapped(trajectory: Any) -> Any:
    try:
        conv = trajectory_to_messages(trajectory)
    except SkipTrajectory as skip:
        return skip.reason
    return (conv.messages, conv.tools, conv.tools_inferred, conv.untrained_assistant, conv.empty_assistant_dropped)


@pytest.mark.parametrize("name", sorted(CASES))
def test_accepted_data_is_valid_and_maps_as_the_model_does(name: str) -> None:
    data = orjson.loads(orjson.dumps(CASES[name]().to_json_dict()))
    for step in data["steps"]:  # every optional part present, so that each is mutated too
        step.setdefault("timestamp", "2025-11-21T17:20:00Z")
        step.setdefault("extra", {"k": "v"})
        if step["source"] == "agent" and step.get("llm_call_count") != 0:
            step.setdefault("metrics", {"prompt_tokens": 5, "cost_usd": 0.5, "logprobs": [-0.5], "prompt_token_ids": [1]})
    data["final_metrics"] = {"total_prompt_tokens": 5, "total_steps": 3, "total_cost_usd": 0.5}
    data["notes"] = "n"
    Trajectory.model_validate(data)
    if name != "multimodal" and name != "tool_errors":  # content parts take the model path
        assert checked_trajectory_data(data) is data
    accepted = rejected = 0
    for mutated in _mutations(data):
        if checked_trajectory_data(mutated) is None:
            rejected += 1
            continue
        accepted += 1
        try:
            model = Trajectory.model_validate(mutated)
        except ValidationError as exc:
            pytest.fail(f"accepted what the models reject: {exc}")
        assert _mapped(mutated) == _mapped(model)
    assert rejected > 0
    assert accepted > 0 or name in ("multimodal", "tool_errors")


def test_conversion_is_the_same_with_and_without_the_fast_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end, with trajectories the fast path takes and ones it leaves to the models (an int
    where a float is, a content-part message, an invalid file)."""
    job = make_job(tmp_path, n_tasks=4)
    first = job / "task-00__alpha__1" / "agent" / "trajectory.json"
    data = orjson.loads(first.read_bytes())
    data["steps"][2]["reasoning_effort"] = 1  # valid, coerced by the models: not vouched for
    data["steps"][1]["message"] = [{"type": "text", "text": data["steps"][1]["message"]}]
    first.write_bytes(orjson.dumps(data))
    bad = job / "task-01__beta__1" / "agent" / "trajectory.json"
    broken = orjson.loads(bad.read_bytes())
    broken["steps"][2]["tool_calls"][0]["arguments"] = "not an object"
    bad.write_bytes(orjson.dumps(broken))
    options = ConvertOptions(per_task_cap=2, tokenizer="o200k_base")
    [fast] = convert_job(job, out=tmp_path / "fast", options=options, workers=1)
    monkeypatch.setattr("trialbook.sft.job.checked_trajectory_data", lambda data: None)
    [models] = convert_job(job, out=tmp_path / "models", options=options, workers=1)
    for name in ("im.jsonl", "lf.json", "lf.stats.json"):
        assert (tmp_path / "fast" / name).read_bytes() == (tmp_path / "models" / name).read_bytes()
    assert fast.stats["trajectories"]["dropped"]["unreadable_trajectory"] == 1 and fast.kept > 0


@pytest.mark.parametrize("value", [2**70, -(2**63) - 1, 1.5, 1e-7, "é\u2028😀\"\\", None, [1, {"b": 2, "a": 1}]])
def test_im_line_built_around_the_messages_is_the_record_serialised(value: Any) -> None:
    """The im.jsonl line is assembled from parts (so that the messages' bytes also give the dedup
    digest): byte for byte the record serialised whole, the stdlib fallback for big ints included."""
    record = {"id": "j/t", "job": "j", "task": "t", "variant": "v", "attempt": 2,
              "messages": [{"role": "user", "content": "x", "v": value}], "tools": [{"a": value}], "score": value,
              "resolved": True, "meta": {"x": value}}
    line, messages = _record_json(record)
    assert line == dumps_json(record) and messages == dumps_json(record["messages"])
    assert messages in line
