"""Building the site incrementally: reindex, then write only the pages whose inputs changed.

1. The index (``results/index.db``) is brought up to date from every root: it already knows
   which trials changed and reads only those.
2. The jobs list and each job page are computed from the index (cheap) and written only
   when their content differs.
3. Trial pages are the expensive part (trajectories are parsed). The cache
   (``<cache>/state.json``) remembers, per trial, the files its page was built from and
   their ``size:mtime`` signatures; a page is rebuilt only when one of them changed (a file
   changed within a second of the build is stored as ``racy`` and looked at again next
   time). Many pages are built in worker processes.
4. Pages of trials and jobs that left the index are deleted.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from filelock import FileLock

from trialbook import __version__
from trialbook.dashboard import extras
from trialbook.dashboard.analysis import analysis_page
from trialbook.dashboard.jobpage import job_data, trial_id
from trialbook.dashboard.jsdata import write_data, write_if_changed
from trialbook.dashboard.site import SiteSpec, write_static
from trialbook.dashboard.trialpage import build_trial_page
from trialbook.errors import SourceError
from trialbook.index.db import open_readonly
from trialbook.index.reindex import reindex
from trialbook.index.signatures import RACY_MARGIN_NS, files_sig
from trialbook.model.trial import utc_now
from trialbook.sources.registry import get_reader

STATE_VERSION = 1
#: Build trial pages in worker processes when at least this many are to be (re)built.
PARALLEL_MIN = 400
CHUNK = 200


@dataclass
class BuildStats:
    """What one build did (printed by ``trialbook dashboard``)."""

    site: str
    index: str
    jobs: int = 0
    trials: int = 0
    trials_built: int = 0
    trials_unchanged: int = 0
    trials_removed: int = 0
    files_written: int = 0
    reindex_s: float = 0.0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


@dataclass
class TrialTask:
    """Trial pages of one job to build in one worker call."""

    layout: str
    job_dir: str
    job: dict[str, Any]
    paths: list[str]
    data_dir: str
    started_ns: int


def code_version() -> str:
    """Hash of the site builder's own code: pages built by another version are rebuilt."""
    digest = hashlib.sha1(__version__.encode())
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _load_state(path: Path) -> dict[str, Any]:
    fresh = {"version": STATE_VERSION, "code": code_version(), "trials": {}, "jobs": {}}
    try:
        state = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return fresh
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        return fresh
    if state.get("code") != fresh["code"]:  # keep the list of pages (to delete stale ones), rebuild all
        state = {**fresh, "jobs": state.get("jobs") or {},
                 "trials": {t: {**v, "sig": "stale"} for t, v in (state.get("trials") or {}).items()}}
    return state


def build_trials(task: TrialTask) -> tuple[list[tuple[str, str, list[str], str]], list[str], int]:
    """Build the pages of ``task``: ([(job id, trial id, files, signature)], warnings, files written)."""
    reader = get_reader(task.layout)
    data = Path(task.data_dir)
    job_dir = Path(task.job_dir)
    try:
        view = reader.read_trials(job_dir, [Path(p) for p in task.paths])
    except SourceError as exc:
        return [], [f"{task.job_dir}: trial pages not built ({exc.message})"], 0
    wanted = set(task.paths)
    done, warnings, written = [], [], 0
    for trial in view.trials:
        key = str(trial.path)
        if key not in wanted:
            continue
        tid = trial_id(key)
        try:
            page, extra, used = build_trial_page(trial, reader, job_dir, task.job, tid)
        except (SourceError, OSError, ValueError) as exc:
            warnings.append(f"{key}: trial page not built ({exc})")
            continue
        more = data / "more" / task.job["id"] / tid
        if more.exists():
            shutil.rmtree(more, ignore_errors=True)
        for k, v in extra.items():
            written += write_data(data, k, v)
        written += write_data(data, f"trial/{task.job['id']}/{tid}", page)
        done.append((task.job["id"], tid, used, files_sig(used, task.started_ns, RACY_MARGIN_NS)))
    return done, warnings, written


def _run_tasks(tasks: list[TrialTask], workers: int | None) -> list[tuple[list, list[str], int]]:
    n = sum(len(t.paths) for t in tasks)
    if workers is None:
        workers = min(os.cpu_count() or 1, 8) if n >= PARALLEL_MIN else 1
    if workers <= 1 or len(tasks) < 2:
        return [build_trials(t) for t in tasks]
    # spawn: the parent holds SQLite connections and locks that a forked child must not inherit
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(build_trials, tasks))


def _remove_trial(data: Path, jid: str, tid: str) -> None:
    (data / "trial" / jid / f"{tid}.js").unlink(missing_ok=True)
    shutil.rmtree(data / "more" / jid / tid, ignore_errors=True)


def build_site(spec: SiteSpec, *, workers: int | None = None, refresh: bool = True) -> BuildStats:
    """Bring the site at ``spec.out`` up to date (see the module docstring)."""
    t0 = time.perf_counter()
    stats = BuildStats(site=str(spec.out), index=str(spec.db))
    spec.cache.mkdir(parents=True, exist_ok=True)
    with FileLock(str(spec.cache / "build.lock"), timeout=600):
        if refresh:
            ri = reindex(spec.db, spec.roots)
            stats.warnings += ri.warnings
        stats.reindex_s = round(time.perf_counter() - t0, 3)
        stats.files_written += write_static(spec.out)
        state_path = spec.cache / "state.json"
        state = _load_state(state_path)
        _build(spec, state, stats, workers)
        write_if_changed(state_path, orjson.dumps(state))
    stats.seconds = round(time.perf_counter() - t0, 3)
    return stats


def _build(spec: SiteSpec, state: dict[str, Any], stats: BuildStats, workers: int | None) -> None:
    data = spec.data
    started = time.time_ns()
    old_trials: dict[str, Any] = state["trials"]
    new_trials: dict[str, Any] = {}
    entries, tasks = [], []
    conn = open_readonly(spec.db)
    try:
        rows = conn.execute("SELECT * FROM all_jobs ORDER BY started_at IS NULL, started_at DESC, job_name").fetchall()
        for row in rows:
            entry, page, trial_rows = job_data(conn, row)
            jid = entry["id"]
            entries.append(entry)
            job_ref = {"id": jid, "name": entry["name"], "layout": entry["layout"]}
            if page["has_analysis"]:
                apage, _ = analysis_page(Path(row["job_dir"]), Path(page["summary"]["analysis_dir"]), job_ref)
                stats.files_written += write_data(data, f"analysis/{jid}", apage)
            stats.files_written += write_data(data, f"job/{jid}", page)
            todo = []
            for trow in trial_rows:
                path = trow[0]
                tid = trial_id(path)
                prev = old_trials.get(tid)
                if prev and prev["job"] == jid and prev["sig"] == files_sig(prev["files"]) \
                        and (data / "trial" / jid / f"{tid}.js").is_file():
                    new_trials[tid] = prev
                    stats.trials_unchanged += 1
                else:
                    todo.append(path)
            for i in range(0, len(todo), CHUNK):
                tasks.append(TrialTask(row["layout"], row["job_dir"], job_ref, todo[i:i + CHUNK], str(data), started))
            stats.trials += len(trial_rows)
    finally:
        conn.close()
    for done, warnings, written in _run_tasks(tasks, workers):
        stats.warnings += warnings
        stats.files_written += written
        for jid, tid, used, sig in done:
            new_trials[tid] = {"job": jid, "files": used, "sig": sig}
            stats.trials_built += 1
    for tid, prev in old_trials.items():
        if tid not in new_trials:
            _remove_trial(data, prev["job"], tid)
            stats.trials_removed += 1
    live_jobs = {e["id"] for e in entries}
    for jid in state.get("jobs", {}):
        if jid not in live_jobs:
            for sub in ("job", "analysis"):
                (data / sub / f"{jid}.js").unlink(missing_ok=True)
            for sub in ("trial", "more"):
                shutil.rmtree(data / sub / jid, ignore_errors=True)
    state["trials"] = new_trials
    state["jobs"] = {e["id"]: e["name"] for e in entries}
    stats.jobs = len(entries)
    sft, _ = extras.sft_page(spec.block)
    archives, _ = extras.archives_page(spec.block)
    stats.files_written += write_data(data, "sft", sft)
    stats.files_written += write_data(data, "archives", archives)
    site = {
        "jobs": entries, "block": None if spec.block is None else str(spec.block.root),
        "roots": [str(r.path) for r in spec.roots], "warnings": stats.warnings[:50],
        "has_sft": bool(sft["datasets"]), "has_archives": bool(archives["runs"]),
    }
    changed = write_data(data, "jobs", site)
    stats.files_written += changed
    if stats.files_written or not (data / "stamp.js").is_file():
        write_data(data, "stamp", {"built_at": utc_now(), "n": time.time_ns()})
