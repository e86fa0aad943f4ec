"""Which known trials changed since the last reindex, found by comparing their files' stored
signatures with ``stat`` (:mod:`trialbook.index.signatures`).

A warm reindex of 100k trials is about 350k ``stat`` calls; one process spends ~1 s on them, so
when there are many the comparisons run in forked worker processes while the main process goes
on planning the next jobs from the database. Results are the same either way: a worker only
stats files and returns the paths whose signature differs.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor

from trialbook.index.jobread import can_fork
from trialbook.index.signatures import files_sig

#: Below this many trials to check in one run, comparing in this process is cheaper than forking.
PARALLEL_MIN_TRIALS = 20_000
#: Trials per unit of work sent to a worker (a few ms of stats: small enough to balance the workers).
CHUNK_TRIALS = 2_500

#: (trial path, newline-separated files, stored signature)
Known = tuple[str, str, str]


def changed_paths(known: Sequence[Known]) -> list[str]:
    """The trial paths among ``known`` whose files no longer match the stored signature."""
    return [path for path, files, stored in known if files_sig(files.split("\n")) != stored]


class SignatureChecker:
    """Compares stored signatures with the files for one reindex run: in this process, or (with
    ``workers`` > 1 and at least :data:`PARALLEL_MIN_TRIALS` trials to check) in a pool of forked
    workers. :meth:`submit` returns a getter, so a caller can submit every job before waiting."""

    def __init__(self, workers: int, expected_trials: int) -> None:
        self._pool: Executor | None = None
        if workers > 1 and expected_trials >= PARALLEL_MIN_TRIALS and can_fork():  # (spawned workers would cost more than they save)
            self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"))

    def submit(self, known: Sequence[Known]) -> Callable[[], list[str]]:
        """Start checking ``known``; the getter returns its changed paths (in ``known``'s order)."""
        if self._pool is None:
            result = changed_paths(known)
            return lambda: result
        futures = [self._pool.submit(changed_paths, known[i:i + CHUNK_TRIALS])
                   for i in range(0, len(known), CHUNK_TRIALS)]
        return lambda: [p for f in futures for p in f.result()]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def __enter__(self) -> SignatureChecker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

