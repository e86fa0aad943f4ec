"""convert(): the four files, filters, dedup, deterministic order, statistics, round trips."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from test_sft_cases import CASES, TEXT_CASES, sft_input

from trialbook.errors import ConfigError
from trialbook.sft import ConvertOptions, SftInput, convert
from trialbook.sft.convert import CONVERTER_VERSION
from trialbook.sft.messages import training_messages, trajectory_to_messages
from trialbook.sft.sharegpt import dataset_info_entry, to_sharegpt
from trialbook.sft.tokens import get_tokenizer


def _read(out: Path) -> tuple[list[dict], list[dict], dict, dict]:
    im = [orjson.loads(line) for line in (out / "im.jsonl").read_bytes().splitlines()]
    lf = orjson.loads((out / "lf.json").read_bytes())
    stats = orjson.loads((out / "lf.stats.json").read_bytes())
    info = orjson.loads((out / "dataset_info.json").read_bytes())
    return im, lf, stats, info


def _all_cases() -> list[SftInput]:
    return [sft_input(name) for name in CASES]


def test_all_cases_round_trip_into_four_aligned_files(tmp_path: Path) -> None:
    result = convert(_all_cases(), tmp_path, ConvertOptions(), dataset_name="job-1")
    im, lf, stats, info = _read(tmp_path)
    assert result.kept == len(im) == len(lf) == len(TEXT_CASES)
    assert result.trajectories_in == len(CASES)
    assert result.dropped["multimodal"] == 1 and result.dropped["empty"] == 1
    assert sum(result.dropped.values()) == len(CASES) - len(TEXT_CASES)
    assert info == dataset_info_entry("job-1", "lf.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset_info.json", "im.jsonl", "lf.json", "lf.stats.json",
                                                       "lf_train.yaml"]
    for record, example in zip(im, lf, strict=True):
        name = record["task"]
        conv = trajectory_to_messages(CASES[name]())
        # im.jsonl round trip: the record carries exactly the mapped messages and tools
        assert record["messages"] == conv.messages and record["tools"] == conv.tools
        assert record["id"] == f"{name}__v1__1" and record["job"] == "job-1"
        assert (record["variant"], record["attempt"], record["score"], record["resolved"]) == ("v1", 1, 1.0, True)
        assert record["meta"] == {
            "source_layout": "native",
            "trial_path": f"artifacts/jobs/job-1/{name}__v1__1",
            "converter_version": CONVERTER_VERSION,
        }
        # lf.json element i is the sharegpt form of im.jsonl line i
        assert example == to_sharegpt(record["messages"], record["tools"])[0]
    assert [r["task"] for r in im] == sorted(TEXT_CASES)
    assert stats["multimodal"] == {"trajectories": 1, "image_parts": 1, "audio_parts": 0}


def test_output_is_deterministic_whatever_the_input_order(tmp_path: Path) -> None:
    inputs = [sft_input(name, variant=v, attempt=a) for name in TEXT_CASES for v in ("b", "a") for a in (2, 1)]
    convert(inputs, tmp_path / "one")
    shuffled = inputs[:]
    random.Random(7).shuffle(shuffled)
    convert(iter(shuffled), tmp_path / "two")
    for name in ("im.jsonl", "lf.json", "lf.stats.json", "dataset_info.json"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    im, _, stats, _ = _read(tmp_path / "one")
    keys = [(r["task"], r["variant"], r["attempt"]) for r in im]
    assert keys == sorted(keys)
    # the same trajectory under four identities: only the first in order survives
    assert stats["trajectories"]["dropped"]["duplicate"] == 3 * len(TEXT_CASES)
    assert {(r["variant"], r["attempt"]) for r in im} == {("a", 1)}


def test_reward_and_resolved_filters(tmp_path: Path) -> None:
    inputs = [
        sft_input("parallel_calls", task="t1", score=1.0),
        sft_input("reasoning", task="t2", score=0.4, resolved=False),
        sft_input("no_tools", task="t3", score=None, resolved=False),
        sft_input("tool_errors", task="t4", score=0.7, resolved=False),
    ]
    result = convert(inputs, tmp_path / "r", ConvertOptions(min_reward=0.5))
    assert result.kept == 2 and result.dropped["min_reward"] == 2
    result = convert(inputs, tmp_path / "s", ConvertOptions(resolved_only=True))
    assert result.kept == 1 and result.dropped["resolved_only"] == 3
    im, _, stats, _ = _read(tmp_path / "s")
    assert [r["task"] for r in im] == ["t1"]
    assert stats["by_task"]["t2"] == {"in": 1, "kept": 0}


def test_max_tokens_uses_the_counted_training_view(tmp_path: Path) -> None:
    counter = get_tokenizer()
    sizes = {}
    for name in TEXT_CASES:
        conv = trajectory_to_messages(CASES[name]())
        sizes[name] = counter.count_example(training_messages(conv.messages), conv.tools)
    limit = sorted(sizes.values())[len(sizes) // 2]
    result = convert([sft_input(n) for n in TEXT_CASES], tmp_path, ConvertOptions(max_tokens=limit))
    im, _, stats, _ = _read(tmp_path)
    assert {r["task"] for r in im} == {n for n, size in sizes.items() if size <= limit}
    assert result.dropped["max_tokens"] == sum(1 for size in sizes.values() if size > limit) > 0
    kept_sizes = sorted(sizes[r["task"]] for r in im)
    assert stats["tokens"]["total"] == sum(kept_sizes)
    assert stats["tokens"]["max"] == kept_sizes[-1] and stats["tokens"]["min"] == kept_sizes[0]
    assert stats["tokens"]["tokenizer"] == "o200k_base" and stats["tokens"]["rendering"] == "openai message recipe"


def test_per_task_cap_keeps_best_scores(tmp_path: Path) -> None:
    names = ["parallel_calls", "reasoning", "no_tools", "tool_errors"]
    scores = [0.2, 0.9, None, 0.9]
    inputs = [sft_input(n, task="same", attempt=i + 1, score=s) for i, (n, s) in enumerate(zip(names, scores, strict=True))]
    inputs.append(sft_input("copied_context", task="other", score=0.0))
    result = convert(inputs, tmp_path, ConvertOptions(per_task_cap=2))
    im, _, stats, _ = _read(tmp_path)
    assert [(r["task"], r["attempt"]) for r in im] == [("other", 1), ("same", 2), ("same", 4)]
    assert result.dropped["per_task_cap"] == 2
    assert stats["by_task"]["same"] == {"in": 4, "kept": 2}
    assert stats["scores"]["values"] == {"0.0": 1, "0.9": 2}


def test_statistics_describe_the_kept_examples(tmp_path: Path) -> None:
    inputs = [sft_input(n, variant="x" if i % 2 else "y", score=i / 10) for i, n in enumerate(CASES)]
    convert(inputs, tmp_path, ConvertOptions(thinking="strip"))
    im, lf, stats, _ = _read(tmp_path)
    assert stats["trajectories"]["in"] == len(CASES) and stats["trajectories"]["kept"] == len(im)
    assert sum(v["in"] for v in stats["by_variant"].values()) == len(CASES)
    assert sum(v["kept"] for v in stats["by_variant"].values()) == len(im)
    assert stats["options"]["thinking"] == "strip"
    assert all("reasoning_content" not in m for r in im for m in r["messages"])
    turns = [sum(t["from"] in ("gpt", "function_call") for t in ex["conversations"]) for ex in lf]
    assert stats["turns"]["assistant"]["total"] == sum(turns) and stats["turns"]["assistant"]["max"] == max(turns)
    calls = [
        c["function"]["name"] for r in im for m in training_messages(r["messages"]) for c in m.get("tool_calls") or ()
    ]
    assert stats["tool_calls"]["per_example"]["total"] == len(calls)
    assert stats["tool_calls"]["by_name"]["bash"] == calls.count("bash")
    assert stats["tool_calls"]["parallel_turns"] == 2  # parallel_calls and tool_errors
    assert stats["conversion"]["untrained_assistant_messages"] == 2
    assert stats["scores"]["count"] == len(im) and stats["scores"]["resolved"] == len(im)


def test_empty_input_writes_valid_empty_files(tmp_path: Path) -> None:
    result = convert([], tmp_path)
    im, lf, stats, _ = _read(tmp_path)
    assert (im, lf, result.kept) == ([], [], 0)
    assert stats["tokens"]["mean"] is None and stats["scores"]["mean"] is None


def test_bad_options_fail_before_reading_inputs(tmp_path: Path) -> None:
    def never() -> Iterator[SftInput]:
        raise AssertionError("inputs must not be read")
        yield  # pragma: no cover

    for kwargs in ({"thinking": "maybe"}, {"max_tokens": 0}, {"per_task_cap": -1}, {"token_threads": 0}):
        with pytest.raises(ConfigError):
            ConvertOptions(**kwargs)
    with pytest.raises(ConfigError, match="unknown tokenizer"):
        convert(never(), tmp_path, ConvertOptions(tokenizer="nope"))
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_rerun_replaces_files_atomically(tmp_path: Path) -> None:
    convert(_all_cases(), tmp_path)
    convert([sft_input("no_tools")], tmp_path)
    im, lf, _, _ = _read(tmp_path)
    assert len(im) == len(lf) == 1
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
