"""The converting half of SFT conversion: options, and one input to a spooled example (see :mod:`.convert`).

:func:`convert_items` turns inputs into *candidates*: each example serialised (im.jsonl line
and lf.json item) into a spool file, with the few facts selection and statistics need. It runs
in the converting process, or in each worker of :mod:`trialbook.sft.parallel`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol, runtime_checkable

import orjson

from trialbook import secrets
from trialbook.errors import ConfigError
from trialbook.sft.candidates import DIGEST_SIZE, Candidates
from trialbook.sft.inputs import SftInput
from trialbook.sft.messages import (
    THINKING_CHOICES,
    SkipTrajectory,
    Thinking,
    dumps_json,
    media_parts,
    training_messages,
    trajectory_data,
    trajectory_to_messages,
)
from trialbook.sft.sharegpt import to_sharegpt
from trialbook.sft.stats import ExampleFacts, SftStats
from trialbook.sft.token_cache import TokenCache
from trialbook.sft.tokens import DEFAULT_TOKENIZER, TokenCounter

CONVERTER_VERSION = "1.0"
IM_FILE = "im.jsonl"
LF_FILE = "lf.json"
STATS_FILE = "lf.stats.json"
DATASET_INFO_FILE = "dataset_info.json"
#: ``tokenizer`` value that turns token counting off: lf.stats.json then has no token figures.
NO_TOKENIZER = "none"


@dataclass(frozen=True)
class ConvertOptions:
    """Filters and formats of a conversion (the ``sft_conversion`` settings of a block).

    ``min_reward`` keeps trials whose score is at least this (a missing score fails it);
    ``resolved_only`` keeps outcome ``resolved`` only; ``max_tokens`` drops examples longer
    than this under ``tokenizer``; ``per_task_cap`` keeps at most this many per task;
    ``thinking`` keeps or strips reasoning. ``token_threads`` and ``batch_size`` tune speed only.
    """

    min_reward: float | None = None
    resolved_only: bool = False
    max_tokens: int | None = None
    per_task_cap: int | None = None
    thinking: Thinking = "keep"
    tokenizer: str = DEFAULT_TOKENIZER
    token_threads: int = 1
    batch_size: int = 256
    #: LLaMA-Factory arguments over the defaults of ``lf_train.yaml`` (:mod:`trialbook.sft.train_config`).
    train: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.thinking not in THINKING_CHOICES:
            raise ConfigError(f"thinking must be one of {', '.join(THINKING_CHOICES)}, got {self.thinking!r}")
        for name in ("max_tokens", "per_task_cap"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ConfigError(f"{name} must be a positive integer or null, got {value!r}")
        for name in ("token_threads", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.min_reward is not None and not isinstance(self.min_reward, int | float):
            raise ConfigError(f"min_reward must be a number or null, got {self.min_reward!r}")
        if self.tokenizer == NO_TOKENIZER and self.max_tokens is not None:
            raise ConfigError(f"max_tokens needs a tokenizer to count with (tokenizer is {NO_TOKENIZER!r})")


#: One position of :class:`IndexedInputs`: an input, a trial without a usable trajectory
#: ``(task, variant, reason)``, or None for a trial that is no input (cancelled, unfinished).
IndexedItem = SftInput | tuple[str, str, str] | None


@runtime_checkable
class IndexedInputs(Protocol):
    """Inputs by position, so that worker processes can each convert a range of them."""

    def __len__(self) -> int: ...

    def get(self, index: int) -> IndexedItem:
        """The item at ``index`` (read when asked: a worker reads only its own range)."""


class Converter:
    """The streaming half of :func:`convert`: filters, maps, serialises and counts in batches."""

    def __init__(self, options: ConvertOptions, counter: TokenCounter | None, stats: SftStats, spool: BinaryIO,
                 spool_index: int = 0, store: TokenCache | None = None) -> None:
        self.options = options
        self.counter = counter
        self.stats = stats
        #: Serialised examples wait on disk, not in memory: memory stays flat whatever the input size.
        self.spool = spool
        self.spool_index = spool_index
        self.store = store
        self.candidates = Candidates()
        #: (candidate index, trainable messages, tools) of the examples whose count is pending.
        self._pending: list[tuple[int, list[dict[str, Any]], list[dict[str, Any]]]] = []
        #: Counts by messages digest + tools digest: a duplicate example (the same messages and
        #: tools, so the same count) is counted once; only one of them is kept anyway.
        self._counted: dict[bytes, int] = {}

    def add(self, item: SftInput) -> None:
        """Filter and convert one input; its token count is filled in when the batch is flushed."""
        options, stats = self.options, self.stats
        stats.saw(item.task, item.variant)
        data = trajectory_data(item.trajectory)  # a model is dumped once, for both
        parts = media_parts(data)
        if any(parts.values()):
            stats.multimodal(parts)
            return
        if options.min_reward is not None and (item.score is None or item.score < options.min_reward):
            stats.drop("min_reward")
            return
        if options.resolved_only and not item.resolved:
            stats.drop("resolved_only")
            return
        try:
            conv = trajectory_to_messages(data, options.thinking)
        except SkipTrajectory as skip:
            stats.drop(skip.reason)
            return
        stats.conversion["tools_inferred"] += conv.tools_inferred
        stats.conversion["untrained_assistant_messages"] += conv.untrained_assistant
        stats.conversion["empty_assistant_dropped"] += conv.empty_assistant_dropped
        example, notes = to_sharegpt(conv.messages, conv.tools, conv.parsed_arguments)
        record = {
            "id": item.id,
            "job": item.job,
            "task": item.task,
            "variant": item.variant,
            "attempt": item.attempt,
            "messages": conv.messages,
            "tools": conv.tools,
            "score": item.score,
            "resolved": item.resolved,
            "meta": {"source_layout": item.layout, "trial_path": item.trial_path, "converter_version": CONVERTER_VERSION},
        }
        trainable = training_messages(conv.messages)
        names = tuple(c["function"]["name"] for m in trainable for c in m.get("tool_calls") or ())
        facts = ExampleFacts(
            task=item.task,
            variant=item.variant,
            score=item.score,
            resolved=item.resolved,
            tokens=0,
            messages=len(conv.messages),
            assistant_turns=sum(1 for t in example["conversations"] if t["from"] in ("gpt", "function_call")),
            tool_names=names,
            parallel_turns=sum(1 for m in trainable if len(m.get("tool_calls") or ()) > 1),
        )
        scrub = secrets.current().bytes
        im_bytes, messages_json = _record_json(record)
        im_line, lf_item = scrub(im_bytes), scrub(dumps_json(example))
        offset = self.spool.seek(0, os.SEEK_END)
        self.spool.write(im_line)
        self.spool.write(lf_item)
        index = self.candidates.add(
            facts, attempt=item.attempt, id=item.id,
            digest=_digest(messages_json),
            notes=notes, spool=self.spool_index, offset=offset, im_len=len(im_line), lf_len=len(lf_item),
        )
        self._pending.append((index, trainable, conv.tools))
        if len(self._pending) >= options.batch_size:
            self.flush()

    def flush(self) -> None:
        """Count tokens of the pending candidates in one batch and set them in ``candidates``."""
        if not self._pending:
            return
        if self.counter is not None:  # tokenizer "none": nothing needs a count (it stays 0)
            table = self.candidates
            keys = [table.digest(i) + _digest(dumps_json(tools))
                    for i, _, tools in self._pending]
            todo = {k: (messages, tools) for k, (_, messages, tools) in zip(keys, self._pending, strict=True)
                    if k not in self._counted}
            fresh = self.counter.count_examples(list(todo.values()), threads=self.options.token_threads,
                                                store=self.store) if todo else []
            self._counted.update(zip(todo, fresh, strict=True))
            for (i, _, _), key in zip(self._pending, keys, strict=True):
                table.tokens[i] = self._counted[key]
        self._pending.clear()


def _digest(data: bytes) -> bytes:
    """The content hash duplicates are found by (in this process only, never stored): SHA-256,
    which CPUs compute in hardware, cut to :data:`DIGEST_SIZE` bytes."""
    return hashlib.sha256(data).digest()[:DIGEST_SIZE]


_RECORD_HEAD = ("id", "job", "task", "variant", "attempt")
_RECORD_TAIL = ("tools", "score", "resolved", "meta")


def _record_json(record: dict[str, Any]) -> tuple[bytes, bytes]:
    """The im.jsonl line of ``record`` and its messages' JSON (what duplicates are found by), in
    one serialisation: orjson's compact output of a mapping is its members' outputs joined, so
    the line is built around the messages' bytes. The messages are built in a fixed key order,
    so equal messages give equal bytes. A value orjson cannot write (an integer beyond 64
    bits) takes the stdlib path for both.
    """
    if tuple(record) != (*_RECORD_HEAD, "messages", *_RECORD_TAIL):
        raise ValueError("unexpected im.jsonl record keys")
    try:
        messages = orjson.dumps(record["messages"])
        head = orjson.dumps({key: record[key] for key in _RECORD_HEAD})
        tail = orjson.dumps({key: record[key] for key in _RECORD_TAIL})
    except orjson.JSONEncodeError:
        return dumps_json(record), dumps_json(record["messages"])
    return b"".join((head[:-1], b',"messages":', messages, b",", tail[1:])), messages


def convert_items(items: Iterable[IndexedItem], options: ConvertOptions, counter: TokenCounter | None,
                  stats: SftStats, spool: BinaryIO, spool_index: int = 0,
                  store: TokenCache | None = None) -> Candidates:
    """Convert ``items`` into ``spool``, counting them in ``stats``; returns the candidates."""
    converter = Converter(options, counter, stats, spool, spool_index, store)
    for item in items:
        if item is None:
            continue
        if isinstance(item, tuple):  # a trial whose trajectory could not be had
            stats.saw(item[0], item[1])
            stats.drop(item[2])
            continue
        converter.add(item)
    converter.flush()
    return converter.candidates


def new_stats(counter: TokenCounter | None) -> SftStats:
    """Empty statistics naming the tokenizer (or that tokens are not counted)."""
    if counter is None:
        return SftStats(tokenizer=NO_TOKENIZER, rendering="tokens not counted", count_tokens=False)
    return SftStats(tokenizer=counter.name, rendering=counter.rendering)
