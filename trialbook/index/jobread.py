"""Reading the jobs a reindex decided to (re)read: through their reader, into plain index rows.

:func:`read_plan` turns a :class:`JobPlan` into a :class:`JobRead` (job fields, trial rows,
file signatures) and touches no database, so big runs can read several jobs at once in
worker processes (:func:`read_plans`); the main process alone writes to SQLite.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from trialbook.errors import SourceError
from trialbook.index.signatures import files_sig
from trialbook.model.outcome import Outcome
from trialbook.results.summary import facts_from_record
from trialbook.sources.base import TrialView
from trialbook.sources.registry import get_reader

#: Run reads in worker processes when at least this many trials (estimated) are to be read.
PARALLEL_MIN_TRIALS = 2000
#: A partial read goes over the stored identities of the job's other trials: about this many cost
#: as much as reading one trial (so touching 1% of big jobs is still read in worker processes).
IDENTITIES_PER_TRIAL = 20
#: A job read in full is split across workers in parts of at least this many trials.
PART_MIN_TRIALS = 500


@dataclass
class JobPlan:
    """What to read of one job: all of it (``read_paths`` None), some trials, or only job-level fields."""

    layout: str
    root: str
    job_dir: str
    started: int  # time.time_ns() when the job was examined: later changes make signatures racy
    margin_ns: int
    job_files: str
    name: str | None = None  # index name of a known job; None for a new one
    read_paths: list[str] | None = None
    removed: set[str] = field(default_factory=set)
    relist: bool = True
    read: bool = True  # False: only removals or a new watch to store
    #: Stored identities of the trials not read (trial path -> JSON), for readers that need them.
    identities: dict[str, str] = field(default_factory=dict)
    #: ``read_paths`` is one part of a read in full (:func:`split_plan`): record only what was read.
    part: bool = False

    def size(self) -> int:
        """Estimated trials to read (a new job: the entries of its directory)."""
        if not self.read:
            return 0
        if self.read_paths is not None:  # the other trials' stored identities are gone over too
            return len(self.read_paths) + len(self.identities) // IDENTITIES_PER_TRIAL
        try:
            with os.scandir(self.job_dir) as it:
                return sum(1 for _ in it)
        except OSError:
            return 0


@dataclass
class JobRead:
    """The outcome of reading a plan: job-level fields, trial rows (without job_name), signatures."""

    name: str
    started_at: str | None
    finished_at: str | None
    status: str | None
    run_id: str
    experiment: str | None
    rows: list[tuple] = field(default_factory=list)
    sources: list[tuple[str, str, str, str | None]] = field(default_factory=list)  # (path, files, sig, identity)
    warnings: list[str] = field(default_factory=list)


def trial_row(view: TrialView) -> tuple:
    """The ``trials`` columns of one trial (from job_name's successor on, in INSERT order)."""
    r = view.record
    f = facts_from_record(r)
    u = r.usage
    return (
        r.variant, r.task, r.trial_name, r.attempt,
        None if r.outcome is None else int(r.outcome == Outcome.RESOLVED),
        None if r.outcome is None else str(r.outcome), r.reward, r.n_turns, r.n_tool_calls,
        f.total_tokens, f.cost_usd, f.aiu, r.model, f.error, r.duration_s, r.agent,
        u.prompt_tokens if u else None, u.completion_tokens if u else None,
        u.cached_tokens if u else None, r.started_at, r.finished_at, str(view.path),
    )


class StoredIdentities(Mapping[str, Any]):
    """The identities the index stored for the trials not read, by trial path, each decoded only
    when the reader asks for it (a partial read of a big job asks for thousands)."""

    def __init__(self, raw: dict[str, str]) -> None:
        self._raw = raw

    def __getitem__(self, path: str) -> Any:
        try:
            return orjson.loads(self._raw[path])
        except orjson.JSONDecodeError:  # a damaged row: the reader reads that trial instead
            return None

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


def read_plan(plan: JobPlan) -> JobRead:
    """Read what ``plan`` asks for through the job's reader (no database access)."""
    reader = get_reader(plan.layout)
    job_dir = Path(plan.job_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        subset = None if plan.read_paths is None else [Path(p) for p in plan.read_paths]
        known = StoredIdentities(plan.identities) if subset is not None else None
        view = reader.read_trials(job_dir, subset, known=known)
        wanted = None if plan.read_paths is None else set(plan.read_paths)
        trials = [t for t in view.trials if wanted is None or str(t.path) in wanted]
        paths = sorted({str(t.path) for t in trials}) if wanted is None or plan.part else sorted(wanted)
        identities = {str(t.path): t.extra.get("identity") for t in trials}
        listed = {str(t.path): t.extra.get("files") for t in trials}
        stats = {str(t.path): t.extra.get("stats") for t in trials}
        sources = []
        for path in paths:
            # a reader that listed the trial's files while reading it saves listing them again,
            # and the fstat of the files it read saves a stat each
            files = listed.get(path) or [str(p) for p in reader.trial_files(Path(path))]
            identity = identities.get(path)
            sources.append((path, "\n".join(files), files_sig(files, plan.started, plan.margin_ns, stats.get(path)),
                            None if identity is None else orjson.dumps(identity).decode()))
    return JobRead(
        name=view.name, started_at=view.started_at, finished_at=view.finished_at, status=view.status,
        run_id=view.meta.get("run_id") or view.name, experiment=view.meta.get("experiment"),
        rows=[trial_row(t) for t in trials], sources=sources,
        warnings=list(dict.fromkeys(str(w.message) for w in caught)),
    )


def _safe_read(plan: JobPlan) -> JobRead | SourceError:
    try:
        return read_plan(plan)
    except SourceError as exc:
        return exc


def split_plan(plan: JobPlan, parts: int) -> list[JobPlan]:
    """A job to be read in full as up to ``parts`` plans of consecutive trials (one: not worth it).

    Each part reads its trials in full (a layout whose trials depend on their siblings reads
    those for identity only); :func:`merge_reads` puts the parts back together.
    """
    if parts < 2 or plan.read_paths is not None or not plan.read or plan.size() < 2 * PART_MIN_TRIALS:
        return [plan]
    try:
        trials = [str(p) for p in get_reader(plan.layout).trial_dirs(Path(plan.job_dir))]
    except (SourceError, OSError):
        return [plan]
    parts = min(parts, len(trials) // PART_MIN_TRIALS)
    if parts < 2:
        return [plan]
    step = -(-len(trials) // parts)
    return [dataclasses.replace(plan, read_paths=trials[i:i + step], part=True)
            for i in range(0, len(trials), step)]


def merge_reads(reads: list[JobRead | SourceError]) -> JobRead | SourceError:
    """The parts of one job's read as the read in full would have given it (trials in job order)."""
    for r in reads:
        if isinstance(r, SourceError):
            return r
    first = reads[0]
    assert isinstance(first, JobRead)
    rows = [row for r in reads for row in r.rows]  # type: ignore[union-attr]
    rows.sort(key=lambda row: (row[1], row[0], row[3], row[2]))  # JobView order: task, variant, attempt, name
    sources = sorted((s for r in reads for s in r.sources), key=lambda s: s[0])  # type: ignore[union-attr]
    messages = list(dict.fromkeys(w for r in reads for w in r.warnings))  # type: ignore[union-attr]
    return dataclasses.replace(first, rows=rows, sources=sources, warnings=messages)


def can_fork() -> bool:
    """Whether worker processes may be forked: only from a process running one thread (workers
    then start at once, nothing re-imported; they never touch the parent's SQLite connection and
    leave through ``os._exit``)."""
    return "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1


def _pool_context() -> multiprocessing.context.BaseContext:
    """fork when :func:`can_fork`, else spawn."""
    return multiprocessing.get_context("fork" if can_fork() else "spawn")


def default_workers() -> int:
    """Reader processes when not told: the CPUs this process may use (at most 8)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


def read_plans(plans: list[JobPlan], workers: int | None = None) -> Iterator[JobRead | SourceError | None]:
    """Every plan read (None for those with nothing to read), in worker processes when worth it;
    given in plan order, each as soon as it is read, so the caller writes one job to the index
    while the workers read the next.

    ``workers`` None uses :func:`default_workers` when the estimated work reaches
    :data:`PARALLEL_MIN_TRIALS`, else reads in this process; 1 forces serial reading. Big jobs
    read in full are split into parts so one job can use every worker; the index contents are
    the same as a serial read's.
    """
    todo = [i for i, p in enumerate(plans) if p.read]
    if workers is None:
        big = sum(plans[i].size() for i in todo) >= PARALLEL_MIN_TRIALS
        workers = default_workers() if big else 1
    tasks = [(i, part) for i in todo for part in split_plan(plans[i], workers)] if workers > 1 else []
    if workers <= 1 or len(tasks) < 2:
        for plan in plans:
            yield _safe_read(plan) if plan.read else None
        return
    tasks.sort(key=lambda t: -t[1].size())  # biggest first balances the workers
    pool = ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=_pool_context())
    try:
        parts: dict[int, list[Future[JobRead | SourceError]]] = {}
        for i, part in tasks:
            parts.setdefault(i, []).append(pool.submit(_safe_read, part))
        for i in range(len(plans)):
            if i not in parts:
                yield None
                continue
            results = [f.result() for f in parts.pop(i)]
            yield merge_reads(results) if len(results) > 1 else results[0]
    finally:
        pool.shutdown(cancel_futures=True)


def now_ns() -> int:
    """The clock signatures are compared against (wall time, as file mtimes are)."""
    return time.time_ns()
