"""Convert trials to SFT data: ``im.jsonl``, ``lf.json``, ``lf.stats.json``, ``dataset_info.json`` and ``lf_train.yaml``.

Pipeline, per input (streamed; the trajectory is not kept after its turn):

1. skip multimodal trajectories (parts counted), then apply ``min_reward`` and ``resolved_only``;
2. map ATIF to chat messages (:mod:`trialbook.sft.messages`) and to a sharegpt example
   (:mod:`trialbook.sft.sharegpt`); serialise both at once with orjson and keep only the bytes;
3. count tokens of the trainable messages in batches (:mod:`trialbook.sft.tokens`).

Then, over all candidates in a deterministic order (task, variant, attempt, id): exact
duplicates are removed (BLAKE2b of the canonical, key-sorted JSON of the messages; the first
in that order is kept), ``max_tokens`` is applied, and ``per_task_cap`` keeps the best-scored
examples of each task (score descending, missing scores last, ties in the same order).
Line *i* of im.jsonl and element *i* of lf.json are the same trial. Each file is written
atomically.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from trialbook import secrets
from trialbook.errors import ConfigError
from trialbook.jsonio import atomic_writer, write_json
from trialbook.sft.inputs import SftInput
from trialbook.sft.messages import (
    THINKING_CHOICES,
    SkipTrajectory,
    Thinking,
    dumps_json,
    media_parts,
    training_messages,
    trajectory_to_messages,
)
from trialbook.sft.sharegpt import ShareGptNotes, dataset_info_entry, to_sharegpt
from trialbook.sft.stats import ExampleFacts, SftStats
from trialbook.sft.tokens import DEFAULT_TOKENIZER, TokenCounter, get_tokenizer
from trialbook.sft.train_config import train_config, write_train_config

CONVERTER_VERSION = "1.0"
IM_FILE = "im.jsonl"
LF_FILE = "lf.json"
STATS_FILE = "lf.stats.json"
DATASET_INFO_FILE = "dataset_info.json"


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


@dataclass
class ConvertResult:
    """Where the files went and the headline numbers (the full statistics are in ``stats``)."""

    out_dir: Path
    im_path: Path
    lf_path: Path
    stats_path: Path
    dataset_info_path: Path
    trajectories_in: int
    kept: int
    dropped: dict[str, int]
    stats: dict[str, Any] = field(repr=False)
    train_config_path: Path | None = None


@dataclass(slots=True)
class _Candidate:
    """A converted example waiting for dedup and selection: sort key, hash, facts, serialised bytes."""

    key: tuple[str, str, int, str]
    digest: bytes
    facts: ExampleFacts
    notes: ShareGptNotes
    offset: int  # where its im.jsonl line, then its lf.json item, were spooled
    im_len: int
    lf_len: int


class _Converter:
    """The streaming half of :func:`convert`: filters, maps, serialises and counts in batches."""

    def __init__(self, options: ConvertOptions, counter: TokenCounter, stats: SftStats, spool: BinaryIO) -> None:
        self.options = options
        self.counter = counter
        self.stats = stats
        #: Serialised examples wait on disk, not in memory: memory stays flat whatever the input size.
        self.spool = spool
        self.candidates: list[_Candidate] = []
        self._pending: list[tuple[_Candidate, list[dict[str, Any]], list[dict[str, Any]]]] = []

    def add(self, item: SftInput) -> None:
        """Filter and convert one input; its token count is filled in when the batch is flushed."""
        options, stats = self.options, self.stats
        stats.saw(item.task, item.variant)
        parts = media_parts(item.trajectory)
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
            conv = trajectory_to_messages(item.trajectory, options.thinking)
        except SkipTrajectory as skip:
            stats.drop(skip.reason)
            return
        stats.conversion["tools_inferred"] += conv.tools_inferred
        stats.conversion["untrained_assistant_messages"] += conv.untrained_assistant
        stats.conversion["empty_assistant_dropped"] += conv.empty_assistant_dropped
        example, notes = to_sharegpt(conv.messages, conv.tools)
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
        im_line, lf_item = scrub(dumps_json(record)), scrub(dumps_json(example))
        offset = self.spool.seek(0, os.SEEK_END)
        self.spool.write(im_line)
        self.spool.write(lf_item)
        candidate = _Candidate(
            key=(item.task, item.variant, item.attempt, item.id),
            digest=hashlib.blake2b(dumps_json(conv.messages, sort_keys=True), digest_size=16).digest(),
            facts=facts,
            notes=notes,
            offset=offset,
            im_len=len(im_line),
            lf_len=len(lf_item),
        )
        self._pending.append((candidate, trainable, conv.tools))
        if len(self._pending) >= options.batch_size:
            self.flush()

    def flush(self) -> None:
        """Count tokens of the pending candidates in one batch and move them to ``candidates``."""
        if not self._pending:
            return
        counts = self.counter.count_examples(
            [(messages, tools) for _, messages, tools in self._pending], threads=self.options.token_threads
        )
        for (candidate, _, _), tokens in zip(self._pending, counts, strict=True):
            candidate.facts.tokens = tokens
            self.candidates.append(candidate)
        self._pending.clear()


def _write_outputs(spool: int, kept: list[_Candidate], im_path: Path, lf_path: Path) -> None:
    """im.jsonl (one line per kept example) and lf.json (a JSON array of them), in output order,
    copied from the spool one example at a time."""
    with atomic_writer(im_path) as im:
        for c in kept:
            im.write(os.pread(spool, c.im_len, c.offset) + b"\n")
    with atomic_writer(lf_path) as lf:
        if not kept:
            lf.write(b"[]\n")
            return
        lf.write(b"[\n")
        for i, c in enumerate(kept):
            lf.write((b",\n" if i else b"") + os.pread(spool, c.lf_len, c.offset + c.im_len))
        lf.write(b"\n]\n")


def _select(candidates: list[_Candidate], options: ConvertOptions, stats: SftStats) -> list[_Candidate]:
    """Deduplicate, apply max_tokens and per_task_cap, and return the kept ones in output order."""
    candidates.sort(key=lambda c: c.key)
    seen: set[bytes] = set()
    kept: list[_Candidate] = []
    for candidate in candidates:
        if candidate.digest in seen:
            stats.drop("duplicate")
            continue
        seen.add(candidate.digest)
        if options.max_tokens is not None and candidate.facts.tokens > options.max_tokens:
            stats.drop("max_tokens")
            continue
        kept.append(candidate)
    if options.per_task_cap is not None:
        by_task: dict[str, list[_Candidate]] = {}
        for candidate in kept:
            by_task.setdefault(candidate.key[0], []).append(candidate)
        chosen: set[int] = set()
        for group in by_task.values():
            ranked = sorted(group, key=lambda c: -c.facts.score if c.facts.score is not None else float("inf"))
            chosen.update(id(c) for c in ranked[: options.per_task_cap])
        stats.drop("per_task_cap", len(kept) - len(chosen))
        kept = [c for c in kept if id(c) in chosen]
    return kept


def convert(
    inputs: Iterable[SftInput],
    out_dir: str | Path,
    options: ConvertOptions | None = None,
    dataset_name: str = "trialbook_sft",
    unavailable: Iterable[tuple[str, str, str]] = (),
) -> ConvertResult:
    """Convert ``inputs`` into ``out_dir``/{im.jsonl, lf.json, lf.stats.json, dataset_info.json}.

    ``dataset_name`` is the key under which ``dataset_info.json`` registers ``lf.json`` for
    LLaMA-Factory. ``unavailable`` lists (task, variant, reason) of trials that had no usable
    trajectory (reason ``no_trajectory`` or ``unreadable_trajectory``); it is consumed after
    ``inputs``, so a lazy producer may fill it while ``inputs`` is iterated. Raises :class:`~trialbook.errors.ConfigError` for bad options or an
    unknown tokenizer, before reading any input.
    """
    options = options or ConvertOptions()
    if not dataset_name:
        raise ConfigError("dataset_name must not be empty")
    counter = get_tokenizer(options.tokenizer)
    stats = SftStats(tokenizer=counter.name, rendering=counter.rendering)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in (IM_FILE, LF_FILE, STATS_FILE, DATASET_INFO_FILE)}
    with tempfile.TemporaryFile(dir=out, prefix=".sft-spool-") as spool:
        converter = _Converter(options, counter, stats, spool)
        for item in inputs:
            converter.add(item)
        for task, variant, reason in unavailable:  # trials whose trajectory could not be had
            stats.saw(task, variant)
            stats.drop(reason)
        converter.flush()
        kept = _select(converter.candidates, options, stats)
        notes = ShareGptNotes()
        for candidate in kept:
            notes.add(candidate.notes)
            stats.kept.append(candidate.facts)
        stats.conversion.update({f"sharegpt_{name}": value for name, value in notes.as_dict().items()})
        spool.flush()
        _write_outputs(spool.fileno(), kept, paths[IM_FILE], paths[LF_FILE])
    body = {
        "dataset": dataset_name,
        "converter_version": CONVERTER_VERSION,
        "options": asdict(options),
        **stats.as_dict(),
    }
    write_json(paths[STATS_FILE], body)
    write_json(paths[DATASET_INFO_FILE], dataset_info_entry(dataset_name, LF_FILE))
    longest = max((f.tokens for f in stats.kept), default=None)
    train_path = write_train_config(out, train_config(out, dataset_name, longest, options.max_tokens, options.train))
    return ConvertResult(
        out_dir=out,
        im_path=paths[IM_FILE],
        lf_path=paths[LF_FILE],
        stats_path=paths[STATS_FILE],
        dataset_info_path=paths[DATASET_INFO_FILE],
        trajectories_in=stats.trajectories_in,
        kept=len(kept),
        dropped=body["trajectories"]["dropped"],
        stats=body,
        train_config_path=train_path,
    )
