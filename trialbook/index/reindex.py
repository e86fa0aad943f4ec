"""Build and update ``results/index.db`` from results trees of any layout, incrementally.

A root (a block's jobs dir, a Harbor ``jobs/``, a ``Trajectory_results/``...) is read through
its layout's reader (:mod:`trialbook.sources`). What was read is remembered so the next run
reads only what changed (:mod:`trialbook.index.signatures`):

* per root, the directories holding its jobs: unchanged means no job came or went, so the
  stored job list is reused without asking the reader;
* per job, the directories holding its trials (same idea), and the signatures of its
  job-level files (``SourceReader.job_files``);
* per trial path, the signatures of its key files (``SourceReader.trial_files``): only trials
  whose signature changed are read again (``SourceReader.read_trials``).

Each root is done in three steps: plan (what changed, from the database and stats), read
(:mod:`trialbook.index.jobread`, in worker processes for big runs), apply (one transaction).
Jobs that vanished leave the index; roots that no longer exist take their jobs with them.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from trialbook.errors import SourceError, TrialbookError
from trialbook.index import signatures as sig
from trialbook.index.db import is_corruption, open_writable, remove_index, writer_lock
from trialbook.index.jobread import JobPlan, JobRead, default_workers, now_ns, read_plans
from trialbook.index.roots import RootSpec
from trialbook.index.sigcheck import SignatureChecker
from trialbook.model.outcome import ERROR_OUTCOMES, Outcome
from trialbook.model.trial import utc_now
from trialbook.sources.base import SourceReader
from trialbook.sources.registry import detect_layout, get_reader


@dataclass
class ReindexStats:
    """What one reindex run did (printed by ``trialbook reindex``)."""

    db: str
    full: bool = False
    rebuilt: bool = False
    roots: list[str] = field(default_factory=list)
    jobs: int = 0
    jobs_added: int = 0
    jobs_updated: int = 0
    jobs_unchanged: int = 0
    jobs_removed: int = 0
    trials: int = 0
    trials_read: int = 0
    trials_removed: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


__all__ = ["Indexer", "ReindexStats", "RootSpec", "refresh_job", "reindex"]

_INSERT_TRIAL = (
    "INSERT INTO all_trials(job_name, variant_slug, task_slug, trial_name, attempt, success, outcome,"
    " reward, n_turns, n_tool_calls, total_tokens, cost_usd, aiu, model, error, duration_s, agent,"
    " prompt_tokens, completion_tokens, cached_tokens, started_at, finished_at, trial_path)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_ERROR_VALUES = tuple(str(o) for o in ERROR_OUTCOMES)


@dataclass
class _Draft:
    """A job's plan before its known trials' signatures are compared (see ``Indexer._draft_plan``)."""

    plan: JobPlan
    stored: set[str] = field(default_factory=set)  # the trial paths the index knows
    current: set[str] = field(default_factory=set)  # the trial paths the job has now
    relist: bool = True
    job_changed: bool = True
    changed: Callable[[], list[str]] = list  # the known trials whose signature differs


class Indexer:
    """Plans, reads and applies jobs on an open index connection (one instance per run)."""

    def __init__(self, conn: sqlite3.Connection, stats: ReindexStats, workers: int | None = None) -> None:
        self.conn = conn
        self.stats = stats
        self.workers = workers
        self.done: set[str] = set()

    # -- roots ---------------------------------------------------------------------------

    def index_root(self, root: Path, layout: str | None) -> None:
        """Bring every job under ``root`` up to date (a new root is read in full)."""
        key = str(root)
        row = self.conn.execute("SELECT layout, watch FROM roots WHERE root = ?", (key,)).fetchone()
        reader = get_reader(layout or (row["layout"] if row else None) or detect_layout(root))
        if row is not None and row["layout"] != reader.name:
            self.remove_root(key)
            row = None
        stored = {r[0]: r[1] for r in self.conn.execute("SELECT job_dir, job_name FROM all_jobs WHERE root = ?", (key,))}
        started = now_ns()
        changed, refreshed = sig.check_watch(row["watch"], started) if row is not None and stored else (True, None)
        if not changed:
            job_dirs = [Path(d) for d in sorted(stored)]
            watch = refreshed or row["watch"]
        else:
            job_dirs = reader.job_dirs(root)
            watch = sig.watch_json(sig.holding_dirs(key, [str(p) for p in job_dirs]), started)
        self.conn.execute(
            "INSERT INTO roots(root, layout, watch, indexed_at) VALUES (?,?,?,?) ON CONFLICT(root)"
            " DO UPDATE SET layout = excluded.layout, watch = excluded.watch, indexed_at = excluded.indexed_at",
            (key, reader.name, watch, utc_now()))
        self.update_jobs(reader, key, job_dirs)
        for gone in sorted(set(stored) - {str(p) for p in job_dirs}):
            self.remove_job(stored[gone])

    def remove_root(self, root: str) -> None:
        """Forget a root and every job indexed under it."""
        for (name,) in self.conn.execute("SELECT job_name FROM all_jobs WHERE root = ?", (root,)).fetchall():
            self.remove_job(name)
        self.conn.execute("DELETE FROM roots WHERE root = ?", (root,))

    def ensure_root(self, root: Path, layout: str) -> None:
        """Register ``root`` without listing it (its next reindex lists it in full)."""
        self.conn.execute("INSERT OR IGNORE INTO roots(root, layout, watch) VALUES (?, ?, '[]')",
                          (str(root), layout))

    # -- jobs ----------------------------------------------------------------------------

    def remove_job(self, job_name: str) -> None:
        """Drop a job and (by cascade) its trials and signatures."""
        n = self.conn.execute("SELECT count(*) FROM all_trials WHERE job_name = ?", (job_name,)).fetchone()[0]
        self.conn.execute("DELETE FROM all_jobs WHERE job_name = ?", (job_name,))
        self.stats.jobs_removed += 1
        self.stats.trials_removed += n

    def update_jobs(self, reader: SourceReader, root: str, job_dirs: Sequence[Path]) -> list[str | None]:
        """Re-read what changed in these jobs; returns their index names (None for a job gone)."""
        keys: list[str] = []
        drafts: list[_Draft | None] = []
        workers = self._workers()
        with SignatureChecker(workers, self._known_trials(root) if workers > 1 else 0) as checker:
            for job_dir in job_dirs:
                key = str(job_dir)
                if key in self.done:
                    continue
                self.done.add(key)
                keys.append(key)
                drafts.append(self._draft_plan(reader, root, job_dir, checker))
            plans = [None if d is None else self._finish_plan(d) for d in drafts]
        todo = [p for p in plans if p is not None]
        for plan, result in zip(todo, read_plans(todo, self.workers), strict=True):
            if isinstance(result, SourceError):
                self.stats.warnings.append(f"{plan.job_dir}: skipped ({result.message})")
                continue
            self.apply(plan, result)
        return [self._name_of(key) for key in keys]

    def _workers(self) -> int:
        return default_workers() if self.workers is None else self.workers

    def _known_trials(self, root: str) -> int:
        """How many trials of ``root`` the index knows (each one's signature is checked)."""
        return self.conn.execute("SELECT count(*) FROM trial_sources WHERE job_name IN"
                                 " (SELECT job_name FROM all_jobs WHERE root = ?)", (root,)).fetchone()[0]

    def _name_of(self, job_dir: str) -> str | None:
        row = self.conn.execute("SELECT job_name FROM all_jobs WHERE job_dir = ?", (job_dir,)).fetchone()
        return row[0] if row else None

    def _draft_plan(self, reader: SourceReader, root: str, job_dir: Path,
                    checker: SignatureChecker) -> _Draft | None:
        """What must be read of one job, as far as the database tells (None: the job is gone and
        was removed); the known trials' signatures go to ``checker``, compared while the next
        jobs are drafted."""
        key = str(job_dir)
        row = self.conn.execute("SELECT * FROM all_jobs WHERE job_dir = ?", (key,)).fetchone()
        if not job_dir.exists():
            if row is not None:
                self.remove_job(row["job_name"])
            return None
        started = now_ns()
        job_files = [str(p) for p in reader.job_files(job_dir)]
        plan = JobPlan(layout=reader.name, root=root, job_dir=key, started=started, margin_ns=sig.RACY_MARGIN_NS,
                       job_files="\n".join(job_files))
        if row is None:
            return _Draft(plan)
        plan.name = row["job_name"]
        cur = self.conn.cursor()
        cur.row_factory = None  # plain tuples: they go to worker processes
        known = cur.execute("SELECT path, files, sig FROM trial_sources WHERE job_name = ?", (plan.name,)).fetchall()
        relist, refreshed = sig.check_watch(row["watch"], started)
        if refreshed is not None:
            self.conn.execute("UPDATE all_jobs SET watch = ? WHERE job_name = ?", (refreshed, plan.name))
        stored = {k[0] for k in known}
        current = {str(p) for p in reader.trial_dirs(job_dir)} if relist else stored
        if relist:
            known = [k for k in known if k[0] in current]
        job_changed = plan.job_files != row["job_files"] or sig.files_sig(job_files) != row["job_sig"]
        return _Draft(plan, stored, current, relist, job_changed, checker.submit(known))

    def _finish_plan(self, draft: _Draft) -> JobPlan | None:
        """The plan of a drafted job once its changed trials are known (None: nothing to do)."""
        plan = draft.plan
        if plan.name is None:
            return plan
        stored, current = draft.stored, draft.current
        plan.removed = stored - current
        plan.read_paths = sorted((current - stored) | set(draft.changed()))
        plan.relist = draft.relist
        plan.read = bool(plan.read_paths) or draft.job_changed
        if not (plan.read or plan.removed or draft.relist):
            self.stats.jobs_unchanged += 1
            return None
        if plan.read:  # the trials not read are known to the reader by their stored identity
            cur = self.conn.cursor()
            cur.row_factory = None  # (path, identity) pairs straight into a dict; a trial read is not looked up
            plan.identities = dict(cur.execute(
                "SELECT path, identity FROM trial_sources WHERE job_name = ? AND identity IS NOT NULL", (plan.name,)))
        return plan

    def _job_name(self, name: str, job_dir: str) -> str:
        row = self.conn.execute("SELECT job_dir FROM all_jobs WHERE job_name = ?", (name,)).fetchone()
        if row is None or row[0] == job_dir:
            return name
        return f"{name}@{hashlib.sha1(job_dir.encode()).hexdigest()[:8]}"

    def apply(self, plan: JobPlan, read: JobRead | None) -> None:
        """Write what was read (and what vanished) of one job, then its aggregates and signatures."""
        c = self.conn
        if plan.name is None:
            assert read is not None
            name = self._job_name(read.name, plan.job_dir)
            c.execute("INSERT INTO all_jobs(job_name, job_dir, layout, root) VALUES (?,?,?,?)",
                      (name, plan.job_dir, plan.layout, plan.root))
            self.stats.jobs_added += 1
        else:
            name = plan.name
            self.stats.jobs_updated += 1
            for path in plan.removed | set(plan.read_paths or ()):
                c.execute("DELETE FROM all_trials WHERE job_name = ? AND trial_path = ?", (name, path))
                c.execute("DELETE FROM trial_sources WHERE job_name = ? AND path = ?", (name, path))
            self.stats.trials_removed += len(plan.removed)
        if read is not None:
            c.executemany(_INSERT_TRIAL, [(name, *row) for row in read.rows])
            c.executemany("INSERT INTO trial_sources(job_name, path, files, sig, identity) VALUES (?,?,?,?,?)",
                          [(name, *s) for s in read.sources])
            self.stats.trials_read += len(read.rows)
            self.stats.warnings += read.warnings
            c.execute("UPDATE all_jobs SET started_at = ?, finished_at = ?, status = ?, run_id = ?, experiment = ?"
                      " WHERE job_name = ?", (read.started_at, read.finished_at, read.status, read.run_id,
                                              read.experiment, name))
        if plan.relist:
            paths = [r[0] for r in c.execute("SELECT path FROM trial_sources WHERE job_name = ?", (name,))]
            c.execute("UPDATE all_jobs SET watch = ? WHERE job_name = ?",
                      (sig.watch_json(sig.holding_dirs(plan.job_dir, paths), plan.started, plan.margin_ns), name))
        counts = dict(c.execute(
            "SELECT COALESCE(outcome, ''), count(*) FROM all_trials WHERE job_name = ? GROUP BY 1", (name,)).fetchall())
        counted = sum(n for o, n in counts.items() if o not in ("", str(Outcome.CANCELLED)))
        job_files = plan.job_files.split("\n") if plan.job_files else []
        c.execute(
            "UPDATE all_jobs SET n_trials = ?, success_rate = ?, n_errors = ?, n_trials_listed = ?, root = ?,"
            " job_files = ?, job_sig = ?, indexed_at = ? WHERE job_name = ?",
            (counted, counts.get(str(Outcome.RESOLVED), 0) / counted if counted else None,
             sum(n for o, n in counts.items() if o in _ERROR_VALUES), sum(counts.values()), plan.root,
             plan.job_files, sig.files_sig(job_files, plan.started, plan.margin_ns), utc_now(), name))


def _norm(path: Path) -> Path:
    return Path(os.path.abspath(path))


def _run(db_path: Path, roots: Sequence[RootSpec], stats: ReindexStats, workers: int | None) -> None:
    conn, rebuilt = open_writable(db_path)
    stats.rebuilt = stats.rebuilt or rebuilt
    try:
        idx = Indexer(conn, stats, workers)
        specs: dict[str, str | None] = {}
        for spec in roots:
            specs.setdefault(str(_norm(spec.path)), spec.layout)
        for row in conn.execute("SELECT root, layout FROM roots").fetchall():
            specs.setdefault(row[0], row[1])
        for root, layout in sorted(specs.items()):
            conn.execute("BEGIN IMMEDIATE")
            try:
                if not Path(root).exists():
                    idx.remove_root(root)
                    stats.warnings.append(f"{root}: root no longer exists; its jobs left the index")
                else:
                    idx.index_root(Path(root), layout)
                    stats.roots.append(root)
                conn.execute("COMMIT")
            except SourceError as exc:  # one unreadable root must not stop the others
                conn.execute("ROLLBACK")
                idx.done.clear()
                stats.warnings.append(f"{root}: not indexed ({exc.message})")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        stats.jobs = conn.execute("SELECT count(*) FROM all_jobs").fetchone()[0]
        stats.trials = conn.execute("SELECT count(*) FROM all_trials").fetchone()[0]
    finally:
        conn.close()


def reindex(db_path: Path, roots: Sequence[RootSpec] = (), *, full: bool = False,
            workers: int | None = None) -> ReindexStats:
    """Update (or with ``full``, rebuild) the index at ``db_path`` from ``roots`` and every root it knows.

    A corrupt index is rebuilt with a warning; concurrent calls serialise on the writer lock.
    ``workers``: reader processes (None: automatic, 1: none; see :func:`jobread.read_plans`).
    """
    t0 = time.perf_counter()
    stats = ReindexStats(db=str(db_path), full=full)
    with writer_lock(db_path):
        if full:
            remove_index(db_path)
        try:
            _run(db_path, roots, stats, workers)
        except (sqlite3.DatabaseError, TrialbookError) as exc:
            if not is_corruption(exc):
                raise
            warnings.warn(f"{db_path}: index unusable ({exc}); rebuilding it from the files", stacklevel=2)
            remove_index(db_path)
            stats = ReindexStats(db=str(db_path), full=True, rebuilt=True)
            _run(db_path, roots, stats, workers)
    stats.seconds = time.perf_counter() - t0
    return stats


def refresh_job(db_path: Path, job_dir: Path, layout: str, root: Path | None = None) -> str | None:
    """Bring one job's rows up to date (adding it under ``root``, default its parent); returns its index name."""
    job_dir = _norm(job_dir)
    with writer_lock(db_path):
        for attempt in (1, 2):
            conn, _ = open_writable(db_path)
            try:
                conn.execute("BEGIN IMMEDIATE")
                row = conn.execute("SELECT root FROM all_jobs WHERE job_dir = ?", (str(job_dir),)).fetchone()
                root_key = row[0] if row and row[0] else str(_norm(root or job_dir.parent))
                idx = Indexer(conn, ReindexStats(db=str(db_path)), workers=1)
                idx.ensure_root(Path(root_key), layout)
                (name,) = idx.update_jobs(get_reader(layout), root_key, [job_dir])
                conn.execute("COMMIT")
                return name
            except (sqlite3.DatabaseError, TrialbookError) as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if attempt == 2 or not is_corruption(exc):
                    raise
                warnings.warn(f"{db_path}: index unusable ({exc}); rebuilding it", stacklevel=2)
                remove_index(db_path)
            finally:
                conn.close()
    return None
