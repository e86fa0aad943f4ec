"""SFT conversion across processes: each worker converts a range of input positions.

Workers are forked (they inherit the job already opened, so nothing is re-read or
re-imported) and each writes its examples to its own spool file; the parent merges the
candidates in position order and the statistics by addition, then selects and writes as one
process would, so the output bytes do not depend on the number of workers. Where fork is not
available (or threads are running), conversion stays in one process.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from trialbook.sft.candidates import Candidates
from trialbook.sft.converter import (
    NO_TOKENIZER,
    ConvertOptions,
    IndexedInputs,
    convert_items,
    new_stats,
)
from trialbook.sft.stats import SftStats
from trialbook.sft.token_cache import TokenCache
from trialbook.sft.tokens import get_tokenizer

#: Fewer inputs than this are converted in one process (a pool costs more than it saves).
PARALLEL_MIN_INPUTS = 16
#: Parts per worker: small enough ranges that a slow one does not leave the others idle.
PARTS_PER_WORKER = 4

#: What the forked workers convert: (inputs, options, spool dir, token cache path), set by the parent.
_WORK: tuple[IndexedInputs, ConvertOptions, Path, Path | None] | None = None


def default_workers() -> int:
    """The CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def parallel_parts(inputs: Any, workers: int) -> list[tuple[int, int]]:
    """The position ranges to convert in workers, or [] to convert in this process."""
    if workers <= 1 or not isinstance(inputs, IndexedInputs) or len(inputs) < PARALLEL_MIN_INPUTS:
        return []
    if "fork" not in multiprocessing.get_all_start_methods() or threading.active_count() > 1:
        return []
    n = len(inputs)
    count = min(n, workers * PARTS_PER_WORKER)
    bounds = [n * i // count for i in range(count + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(count)]


def _convert_part(index: int, start: int, stop: int) -> tuple[Candidates, SftStats, dict[bytes, int]]:
    """In a worker: convert positions [start, stop) into spool file ``index``."""
    assert _WORK is not None
    inputs, options, spool_dir, cache_path = _WORK
    counter = None if options.tokenizer == NO_TOKENIZER else get_tokenizer(options.tokenizer)
    store = TokenCache(cache_path) if cache_path is not None and counter is not None else None
    stats = new_stats(counter)
    with open(spool_dir / f"part-{index:05d}", "w+b") as spool:
        candidates = convert_items((inputs.get(i) for i in range(start, stop)), options, counter, stats, spool,
                                   index, store)
    new = store.take_new() if store is not None else {}
    if store is not None:
        store.close()
    return candidates, stats, new


def convert_parallel(inputs: IndexedInputs, parts: list[tuple[int, int]], workers: int, options: ConvertOptions,
                     spool_dir: Path, stats: SftStats, store: TokenCache | None) -> Candidates:
    """Convert every part in (at most ``workers``) worker processes; merges their statistics into
    ``stats`` and their new token counts into ``store``; returns the candidates in position order."""
    global _WORK
    workers = min(workers, len(parts))
    _WORK = (inputs, options, spool_dir, store.path if store is not None else None)
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = [pool.submit(_convert_part, i, start, stop) for i, (start, stop) in enumerate(parts)]
            candidates = Candidates()
            for future in futures:  # in position order
                part_candidates, part_stats, new = future.result()
                candidates.extend(part_candidates)
                del part_candidates
                stats.merge(part_stats)
                if store is not None:
                    store.add(new.items())
    finally:
        _WORK = None
    return candidates
