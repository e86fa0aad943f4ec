"""Reading the jobs a reindex decided to (re)read: through their reader, into plain index rows.

:func:`read_plan` turns a :class:`JobPlan` into a :class:`JobRead` (job fields, trial rows,
file signatures) and touches no database, so big runs can read several jobs at once in
worker processes (:func:`read_plans`); the main process alone writes to SQLite.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
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

    def size(self) -> int:
        """Estimated trials to read (a new job: the entries of its directory)."""
        if not self.read:
            return 0
        if self.read_paths is not None:
            return len(self.read_paths)
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


def read_plan(plan: JobPlan) -> JobRead:
    """Read what ``plan`` asks for through the job's reader (no database access)."""
    reader = get_reader(plan.layout)
    job_dir = Path(plan.job_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        subset = None if plan.read_paths is None else [Path(p) for p in plan.read_paths]
        known = {Path(p): orjson.loads(v) for p, v in plan.identities.items()} if subset is not None else None
        view = reader.read_trials(job_dir, subset, known=known)
        wanted = None if plan.read_paths is None else set(plan.read_paths)
        trials = [t for t in view.trials if wanted is None or str(t.path) in wanted]
        paths = sorted({str(t.path) for t in trials}) if wanted is None else sorted(wanted)
        identities = {str(t.path): t.extra.get("identity") for t in trials}
        listed = {str(t.path): t.extra.get("files") for t in trials}
        sources = []
        for path in paths:
            # a reader that listed the trial's files while reading it saves listing them again
            files = listed.get(path) or [str(p) for p in reader.trial_files(Path(path))]
            identity = identities.get(path)
            sources.append((path, "\n".join(files), files_sig(files, plan.started, plan.margin_ns),
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


def read_plans(plans: list[JobPlan], workers: int | None = None) -> list[JobRead | SourceError | None]:
    """Read every plan (None for those with nothing to read), in worker processes when worth it.

    ``workers`` None picks ``min(CPUs, jobs to read)`` when the estimated work reaches
    :data:`PARALLEL_MIN_TRIALS`, else reads in this process; 1 forces serial reading.
    """
    todo = [i for i, p in enumerate(plans) if p.read]
    out: list[Any] = [None] * len(plans)
    if workers is None:
        big = len(todo) >= 2 and sum(plans[i].size() for i in todo) >= PARALLEL_MIN_TRIALS
        workers = min(os.cpu_count() or 1, len(todo), 8) if big else 1
    if workers <= 1 or len(todo) < 2:
        for i in todo:
            out[i] = _safe_read(plans[i])
        return out
    # spawn, not fork: the parent holds an open SQLite connection a forked child must not inherit
    order = sorted(todo, key=lambda i: -plans[i].size())  # biggest first balances the workers
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        for i, result in zip(order, pool.map(_safe_read, [plans[i] for i in order]), strict=True):
            out[i] = result
    return out


def now_ns() -> int:
    """The clock signatures are compared against (wall time, as file mtimes are)."""
    return time.time_ns()
