"""The job monitor: keeps ``logs/monitor.md`` (and ``logs/monitor.json``) current while a job runs.

The report shows progress, throughput, ETA, errors by exception type, the slowest finished
trials and the running trials with no new output for ``monitor.stall_after_s`` seconds
(judged by the newest modification time under the trial's ``agent/`` directory, where
agents stream their output). A :class:`Monitor` is a progress listener of the scheduler
plus a background thread that rewrites the report every few seconds; the archive copies
its last report into ``monitor.md``.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic import ValidationError

from trialbook.errors import TrialbookError
from trialbook.jsonio import atomic_write_text, read_json, write_json
from trialbook.layout.archive_paths import monitor_report, monitor_state
from trialbook.layout.paths import BlockPaths, JobPaths, TrialPaths
from trialbook.model.outcome import ERROR_OUTCOMES, Outcome
from trialbook.model.trial import TrialRecord, utc_now

MONITOR_SCHEMA = "trialbook.monitor/1"
N_SLOWEST = 5


@dataclass(frozen=True)
class FinishedTrial:
    """What the monitor keeps of one finished trial."""

    name: str
    outcome: str
    duration_s: float | None
    error_type: str | None

    @classmethod
    def from_record(cls, rec: TrialRecord) -> FinishedTrial:
        error = None
        if rec.outcome in ERROR_OUTCOMES:
            error = rec.exception.type if rec.exception else str(rec.outcome)
        return cls(rec.trial_name, str(rec.outcome), rec.duration_s, error)


def parse_ts(value: str | None) -> float | None:
    """Epoch seconds of an ISO 8601 timestamp as trialbook writes them (None when absent or bad)."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def last_output_time(trial: TrialPaths) -> float | None:
    """The newest modification time under the trial's ``agent/`` directory (None if it has none)."""
    newest: float | None = None
    for root, _dirs, files in os.walk(trial.agent_dir):
        for name in (".", *files):
            try:
                mtime = os.stat(os.path.join(root, name)).st_mtime
            except OSError:
                continue
            newest = mtime if newest is None else max(newest, mtime)
    return newest


def build_snapshot(*, job: str, job_dir: Path, state: str, total: int, done: int, skipped: int,
                   finished: list[FinishedTrial], started_at: str | None, now: float,
                   running: list[dict[str, Any]], stall_after_s: float, pid: int | None,
                   ended_at: float | None = None) -> dict[str, Any]:
    """The monitor's report as a JSON-ready mapping (a pure function of what was observed).

    ``finished`` holds the trials finished in this run (``skipped`` ones were done before);
    throughput and ETA are computed from them only.
    """
    start = parse_ts(started_at)
    end = ended_at if ended_at is not None else now
    elapsed = max(0.0, end - start) if start is not None else None
    throughput = len(finished) / (elapsed / 60) if elapsed and finished else None
    remaining = max(0, total - done)
    eta_s = remaining / throughput * 60 if throughput and state == "running" else None
    outcomes: dict[str, int] = {}
    errors: dict[str, int] = {}
    for t in finished:
        outcomes[t.outcome] = outcomes.get(t.outcome, 0) + 1
        if t.error_type:
            errors[t.error_type] = errors.get(t.error_type, 0) + 1
    slowest = sorted((t for t in finished if t.duration_s is not None),
                     key=lambda t: t.duration_s or 0.0, reverse=True)[:N_SLOWEST]
    return {
        "schema": MONITOR_SCHEMA,
        "job": job,
        "job_dir": str(job_dir),
        "state": state,
        "pid": pid,
        "started_at": started_at,
        "updated_at": _iso(now),
        "elapsed_s": round(elapsed, 1) if elapsed is not None else None,
        "total": total,
        "done": done,
        "skipped": skipped,
        "finished_this_run": len(finished),
        "remaining": remaining,
        "percent": round(100 * done / total, 1) if total else None,
        "throughput_per_min": round(throughput, 2) if throughput else None,
        "eta_s": round(eta_s, 1) if eta_s is not None else None,
        "eta_at": _iso(now + eta_s) if eta_s is not None else None,
        "outcomes": dict(sorted(outcomes.items())),
        "errors_by_type": dict(sorted(errors.items(), key=lambda kv: (-kv[1], kv[0]))),
        "slowest": [{"trial": t.name, "duration_s": t.duration_s, "outcome": t.outcome} for t in slowest],
        "running": running,
        "stalled": [r for r in running if r.get("stalled")],
        "stall_after_s": stall_after_s,
    }


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 10:
        return f"{seconds:.1f}s"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else (f"{m}m {s:02d}s" if m else f"{s}s")


def render_markdown(snap: dict[str, Any]) -> str:
    """The report as Markdown (the content of ``logs/monitor.md``)."""
    total, done = snap["total"], snap["done"]
    pct = f" ({snap['percent']:.0f}%)" if snap.get("percent") is not None else ""
    tput = snap.get("throughput_per_min")
    eta = _duration(snap.get("eta_s"))
    if snap.get("eta_at"):
        eta += f" (at {snap['eta_at']})"
    lines = [
        f"# Monitor: job {snap['job']}",
        "",
        f"State **{snap['state']}**, updated {snap['updated_at']}"
        + (f", runner pid {snap['pid']}" if snap.get("pid") else ""),
        "",
        "| metric | value |",
        "|---|---|",
        f"| progress | {done} / {total}{pct} |",
        f"| resumed (done before this run) | {snap['skipped']} |",
        f"| elapsed | {_duration(snap.get('elapsed_s'))} |",
        f"| throughput | {f'{tput:.2f} trials/min' if tput else '—'} |",
        f"| ETA | {eta} |",
        "",
        "## Outcomes (this run)",
        "",
    ]
    lines += _md_table(["outcome", "trials"], list(snap["outcomes"].items()))
    lines += ["", "## Errors by type", ""]
    lines += _md_table(["exception type (or outcome)", "trials"], list(snap["errors_by_type"].items()))
    lines += ["", f"## Slowest finished trials (top {N_SLOWEST})", ""]
    lines += _md_table(["trial", "duration", "outcome"],
                       [(s["trial"], _duration(s["duration_s"]), s["outcome"]) for s in snap["slowest"]])
    lines += ["", "## Running trials", ""]
    lines += _md_table(["trial", "running for", "last output"],
                       [(r["trial"], _duration(r["running_s"]), f"{_duration(r['idle_s'])} ago")
                        for r in snap["running"]])
    lines += ["", f"## No progress for more than {_duration(snap['stall_after_s'])}", ""]
    lines += _md_table(["trial", "no new output for"],
                       [(r["trial"], _duration(r["idle_s"])) for r in snap["stalled"]])
    return "\n".join(lines) + "\n"


def _md_table(columns: list[str], rows: list[tuple[Any, ...]]) -> list[str]:
    if not rows:
        return ["none"]
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return out


class Monitor:
    """Progress listener + periodic writer of the live report of one job run.

    Use as a context manager around the run and pass :meth:`on_progress` to the scheduler;
    call :meth:`finish` with the job's final state (``__exit__`` writes ``failed`` otherwise).
    Nothing is written until the scheduler's first callback (sent once it holds the job
    lock), so a runner refused by another one's lock never overwrites that one's report.
    """

    def __init__(self, block: BlockPaths, job: JobPaths, plan_names: list[str], stall_after_s: float,
                 interval_s: float | None = None) -> None:
        self.block = block
        self.job = job
        self.plan_names = list(plan_names)
        self.stall_after_s = stall_after_s
        self.interval_s = interval_s or min(5.0, max(0.5, stall_after_s / 4))
        self.started_at = utc_now()
        self.total = len(self.plan_names)
        self.done = 0
        self.skipped: int | None = None
        self.finished: dict[str, FinishedTrial] = {}
        self.state = "running"
        self._ended: float | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_write = 0.0
        self._settled: set[str] = set()  # finished before this run: never re-read

    def on_progress(self, done: int, total: int, rec: TrialRecord | None) -> None:
        """The scheduler's progress callback: ``(done, total, finished record or None at start)``."""
        with self._lock:
            first = self.skipped is None
            self.done, self.total = done, total
            if first:
                self.skipped = done - (1 if rec is not None else 0)
            if rec is not None:
                self.finished[rec.trial_name] = FinishedTrial.from_record(rec)
        if first:
            self._thread = threading.Thread(target=self._loop, name="trialbook-monitor", daemon=True)
            self._thread.start()
        if first or time.monotonic() - self._last_write >= 1.0:
            self.write()

    def _running(self, now: float) -> list[dict[str, Any]]:
        """Trials of this run whose ``trial.json`` says running, with how long they show no output."""
        out = []
        for name in self.plan_names:
            if name in self.finished or name in self._settled:
                continue
            paths = self.job.trial(name)
            if not paths.trial_json.exists():
                continue
            try:
                rec = TrialRecord.model_validate(read_json(paths.trial_json))
            except (TrialbookError, ValidationError):
                continue
            if (rec.started_at or "") < self.started_at:
                if rec.status == "finished" and rec.outcome not in (None, Outcome.CANCELLED):
                    self._settled.add(name)  # done by an earlier run; the scheduler skips it
                continue  # or left over by a crashed run, and not started again yet
            if rec.status != "running":
                continue
            began = parse_ts(rec.started_at) or now
            last = max(last_output_time(paths) or began, began)
            idle = max(0.0, now - last)
            out.append({"trial": name, "started_at": rec.started_at,
                        "running_s": round(now - began, 1), "idle_s": round(idle, 1),
                        "last_output_at": _iso(last), "stalled": idle > self.stall_after_s})
        return out

    def snapshot(self) -> dict[str, Any]:
        """The current report as a JSON-ready mapping."""
        now = time.time()
        running = self._running(now) if self.state == "running" else []
        with self._lock:
            return build_snapshot(
                job=self.job.name, job_dir=self.job.dir, state=self.state, total=self.total,
                done=self.done, skipped=self.skipped or 0, finished=list(self.finished.values()),
                started_at=self.started_at, now=now, running=running,
                stall_after_s=self.stall_after_s, pid=os.getpid(), ended_at=self._ended,
            )

    def write(self) -> dict[str, Any]:
        """Rewrite ``logs/monitor.md`` and ``logs/monitor.json`` atomically; returns the snapshot."""
        snap = self.snapshot()
        self._last_write = time.monotonic()
        write_json(monitor_state(self.block), snap)
        atomic_write_text(monitor_report(self.block), render_markdown(snap))
        return snap

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.write()
            except OSError:
                continue  # a full disk must not kill the run; the next tick retries

    def finish(self, state: str) -> dict[str, Any]:
        """Stop the periodic writer and write the final report with ``state``."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.state = state
        self._ended = time.time()
        return self.write() if self.skipped is not None else self.snapshot()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._ended is None:
            self.finish("failed" if exc is not None else "completed")


def read_monitor(block: BlockPaths) -> dict[str, Any] | None:
    """The last report written for the block (None when no job has been monitored)."""
    path = monitor_state(block)
    if not path.exists():
        return None
    data = read_json(path)
    return data if isinstance(data, dict) else None


def is_live(snap: dict[str, Any]) -> bool:
    """True while the report's job is running and its runner process is alive."""
    pid = snap.get("pid")
    return snap.get("state") == "running" and isinstance(pid, int) and pid_alive(pid)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def report_from_job(job: JobPaths, stall_after_s: float = 300.0) -> str:
    """A final report rebuilt from a job's files (for archives of jobs run without a monitor here)."""
    return render_markdown(snapshot_from_job(job, stall_after_s))


def snapshot_from_job(job: JobPaths, stall_after_s: float = 300.0) -> dict[str, Any]:
    """The monitor's snapshot of a job rebuilt from its files (for a job that is not running now)."""
    records: list[TrialRecord] = []
    for d in job.trial_dirs():
        try:
            records.append(TrialRecord.model_validate(read_json(d / "trial.json")))
        except (TrialbookError, ValidationError):
            continue
    agg: dict[str, Any] = {}
    if job.aggregate.exists():
        try:
            loaded = read_json(job.aggregate)
            agg = loaded if isinstance(loaded, dict) else {}
        except TrialbookError:
            agg = {}
    finished = [FinishedTrial.from_record(r) for r in records if r.outcome is not None]
    end = parse_ts(agg.get("finished_at")) or time.time()
    total = agg.get("n_trials_planned") or len(records)
    snap = build_snapshot(
        job=job.name, job_dir=job.dir, state=str(agg.get("status") or "unknown"), total=total,
        done=len(finished), skipped=0, finished=finished, started_at=agg.get("started_at"),
        now=end, running=[], stall_after_s=stall_after_s, pid=None, ended_at=end,
    )
    return snap
