"""Convert trials to SFT data: ``im.jsonl``, ``lf.json``, ``lf.stats.json``, ``dataset_info.json`` and ``lf_train.yaml``.

Pipeline, per input (streamed; the trajectory is not kept after its turn):

1. skip multimodal trajectories (parts counted), then apply ``min_reward`` and ``resolved_only``;
2. map ATIF to chat messages (:mod:`trialbook.sft.messages`) and to a sharegpt example
   (:mod:`trialbook.sft.sharegpt`); serialise both at once with orjson and keep only the bytes;
3. count tokens of the trainable messages in batches (:mod:`trialbook.sft.tokens`).

Then, over all candidates in a deterministic order (task, variant, attempt, id): exact
duplicates are removed (a hash of the messages' JSON, canonical as the messages are built in
a fixed key order; the first in that order is kept), ``max_tokens`` is applied, and ``per_task_cap`` keeps the best-scored
examples of each task (score descending, missing scores last, ties in the same order).
Line *i* of im.jsonl and element *i* of lf.json are the same trial. Each file is written
atomically.

Memory stays flat whatever the input size: examples are serialised to spool files as they are
converted, and only the few facts selection needs stay in memory, column-wise
(:mod:`trialbook.sft.candidates`, ~100 bytes an example); the statistics of the kept examples
are summed as they are kept. A job's trials are read one at a time where the layout allows it
(:class:`~trialbook.sources.base.TrialStream`). Inputs given by position
(:class:`IndexedInputs`, as :func:`trialbook.sft.job.convert_job` does) are converted by
``workers`` processes (:mod:`trialbook.sft.parallel`), each over a range of positions, and
merged in position order: the output bytes are those of one process. Tokenizer ``none`` turns
token counting off (no ``max_tokens`` then); a ``token_cache`` file keeps counts by content hash.
"""

from __future__ import annotations

import os
import tempfile
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trialbook.errors import ConfigError
from trialbook.jsonio import atomic_writer, write_json
from trialbook.sft.candidates import Candidates
from trialbook.sft.converter import (
    CONVERTER_VERSION,
    DATASET_INFO_FILE,
    IM_FILE,
    LF_FILE,
    NO_TOKENIZER,
    STATS_FILE,
    ConvertOptions,
    IndexedInputs,
    IndexedItem,
    convert_items,
    new_stats,
)
from trialbook.sft.inputs import SftInput
from trialbook.sft.parallel import convert_parallel, parallel_parts
from trialbook.sft.sharegpt import dataset_info_entry
from trialbook.sft.stats import SftStats
from trialbook.sft.token_cache import TokenCache
from trialbook.sft.tokens import get_tokenizer
from trialbook.sft.train_config import train_config, write_train_config

__all__ = [
    "CONVERTER_VERSION",
    "DATASET_INFO_FILE",
    "IM_FILE",
    "LF_FILE",
    "NO_TOKENIZER",
    "STATS_FILE",
    "ConvertOptions",
    "ConvertResult",
    "IndexedInputs",
    "IndexedItem",
    "convert",
]


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


def _write_outputs(spools: list[int], table: Candidates, kept: Sequence[int], im_path: Path, lf_path: Path) -> None:
    """im.jsonl (one line per kept example) and lf.json (a JSON array of them), in output order,
    copied from the spools one example at a time."""
    spool, offset, im_len, lf_len = table.spool, table.offset, table.im_len, table.lf_len
    with atomic_writer(im_path) as im:
        for i in kept:
            im.write(os.pread(spools[spool[i]], im_len[i], offset[i]) + b"\n")
    with atomic_writer(lf_path) as lf:
        if not kept:
            lf.write(b"[]\n")
            return
        lf.write(b"[\n")
        for n, i in enumerate(kept):
            lf.write((b",\n" if n else b"") + os.pread(spools[spool[i]], lf_len[i], offset[i] + im_len[i]))
        lf.write(b"\n]\n")


def _select(table: Candidates, options: ConvertOptions, stats: SftStats) -> array[int]:
    """Deduplicate, apply max_tokens and per_task_cap; the indices of the kept ones, in output order."""
    order = table.output_order()
    seen: set[bytes] = set()
    kept = array("Q")
    tokens = table.tokens
    for i in order:
        digest = table.digest(i)
        if digest in seen:
            stats.drop("duplicate")
            continue
        seen.add(digest)
        if options.max_tokens is not None and tokens[i] > options.max_tokens:
            stats.drop("max_tokens")
            continue
        kept.append(i)
    del order, seen
    if options.per_task_cap is not None:
        by_task: dict[int, list[int]] = {}
        for i in kept:
            by_task.setdefault(table.task[i], []).append(i)
        chosen: set[int] = set()
        for group in by_task.values():
            scores = [table.score_of(i) for i in group]
            ranked = sorted(range(len(group)), key=lambda k: -scores[k] if scores[k] is not None else float("inf"))
            chosen.update(group[k] for k in ranked[: options.per_task_cap])
        stats.drop("per_task_cap", len(kept) - len(chosen))
        kept = array("Q", (i for i in kept if i in chosen))
    return kept


def _serial_items(inputs: Iterable[SftInput] | IndexedInputs,
                  unavailable: Iterable[tuple[str, str, str]]) -> Iterator[IndexedItem]:
    if isinstance(inputs, IndexedInputs):
        yield from (inputs.get(i) for i in range(len(inputs)))
    else:
        yield from inputs
    yield from unavailable  # consumed after the inputs (a lazy producer fills it meanwhile)


def convert(
    inputs: Iterable[SftInput] | IndexedInputs,
    out_dir: str | Path,
    options: ConvertOptions | None = None,
    dataset_name: str = "trialbook_sft",
    unavailable: Iterable[tuple[str, str, str]] = (),
    *,
    workers: int = 1,
    token_cache: Path | None = None,
) -> ConvertResult:
    """Convert ``inputs`` into ``out_dir``/{im.jsonl, lf.json, lf.stats.json, dataset_info.json}.

    ``dataset_name`` is the key under which ``dataset_info.json`` registers ``lf.json`` for
    LLaMA-Factory. ``unavailable`` lists (task, variant, reason) of trials that had no usable
    trajectory (reason ``no_trajectory`` or ``unreadable_trajectory``); it is consumed after
    ``inputs``, so a lazy producer may fill it while ``inputs`` is iterated. ``workers`` > 1
    converts :class:`IndexedInputs` in that many processes (same bytes as one; other inputs are
    converted here). ``token_cache``: a SQLite file of token counts by content hash, read and
    extended. Raises :class:`~trialbook.errors.ConfigError` for bad options or an
    unknown tokenizer, before reading any input.
    """
    options = options or ConvertOptions()
    if not dataset_name:
        raise ConfigError("dataset_name must not be empty")
    counter = None if options.tokenizer == NO_TOKENIZER else get_tokenizer(options.tokenizer)
    stats = new_stats(counter)
    store = TokenCache(token_cache) if token_cache is not None and counter is not None else None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in (IM_FILE, LF_FILE, STATS_FILE, DATASET_INFO_FILE)}
    with tempfile.TemporaryDirectory(dir=out, prefix=".sft-spool-") as spool_dir:
        parts = parallel_parts(inputs, workers)
        if parts:
            candidates = convert_parallel(inputs, parts, workers, options, Path(spool_dir), stats, store)
            for item in unavailable:  # normally empty: indexed inputs report these by position
                stats.saw(item[0], item[1])
                stats.drop(item[2])
        else:
            with open(Path(spool_dir) / "part-00000", "w+b") as spool:
                candidates = convert_items(_serial_items(inputs, unavailable), options, counter, stats, spool, 0,
                                           store)
        kept = _select(candidates, options, stats)
        for i in kept:
            stats.keep(candidates.facts(i))
        notes = candidates.sum_notes(kept)
        stats.conversion.update({f"sharegpt_{name}": value for name, value in notes.as_dict().items()})
        spools = [os.open(p, os.O_RDONLY) for p in sorted(Path(spool_dir).iterdir())]
        try:
            _write_outputs(spools, candidates, kept, paths[IM_FILE], paths[LF_FILE])
        finally:
            for fd in spools:
                os.close(fd)
    if store is not None:
        store.save()
        store.close()
    body = {
        "dataset": dataset_name,
        "converter_version": CONVERTER_VERSION,
        "options": asdict(options),
        **stats.as_dict(),
    }
    write_json(paths[STATS_FILE], body)
    write_json(paths[DATASET_INFO_FILE], dataset_info_entry(dataset_name, LF_FILE))
    longest = stats.longest if counter is not None else None
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
