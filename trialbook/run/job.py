"""Job-level bookkeeping: the trial plan, the config snapshot and resume check, and the job lock.

A job is resumable: its ``config.yaml`` snapshot is compared with the current config on
the keys that change what a trial does (tasks, variants, attempts, timeouts, environment);
a difference is refused with a list of what changed. Concurrency and post-processing
settings may change between resumes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import yaml

from trialbook.config import BlockConfig, read_yaml, redact_config
from trialbook.errors import ConfigError, JobConfigChangedError, JobLockedError
from trialbook.flock import try_lock, unlock
from trialbook.jsonio import atomic_write_text, read_json, write_json
from trialbook.layout.paths import JobPaths, trial_dir_name
from trialbook.run.tasks import Task
from trialbook.run.trial import TrialPlan

#: Config keys whose change alters trials; a resumed job must keep them identical.
JOB_DEFINING_KEYS = ("kind", "tasks", "variants", "attempts", "timeouts", "environment")


def default_job_name(now: datetime | None = None) -> str:
    """A timestamped name like Harbor's: ``2026-11-21__17-30-05``."""
    return (now or datetime.now()).strftime("%Y-%m-%d__%H-%M-%S")


def unused_job_name(jobs_dir: Path, now: datetime | None = None) -> str:
    """A new job's default name: the timestamp, with ``-2``, ``-3``... when a job of that second exists.

    The directory is created here (``mkdir`` fails if another runner took the name first), so
    two runs started in the same second never share a job.
    """
    base = default_job_name(now)
    jobs_dir.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        name = base if n == 1 else f"{base}-{n}"
        try:
            (jobs_dir / name).mkdir()
        except FileExistsError:
            continue
        return name
    raise ConfigError(f"more than 999 jobs started in the second {base}", jobs_dir)


def plan_trials(tasks: list[Task], config: BlockConfig) -> list[TrialPlan]:
    """Every (task, variant, attempt), attempt-major so partial results stay balanced."""
    single = len(config.variants) == 1 and config.attempts == 1
    return [
        TrialPlan(task, variant, attempt, trial_dir_name(task.name, variant.name, attempt, single=single))
        for attempt in range(1, config.attempts + 1)
        for task in tasks
        for variant in config.variants
    ]


def snapshot_data(raw_config: dict[str, Any]) -> dict[str, Any]:
    """The redacted config as stored in the job directory (without the live status)."""
    data = {k: v for k, v in raw_config.items() if k != "status"}
    return redact_config(data)


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out or {prefix: {}}
    if isinstance(node, list):
        out = {}
        for i, v in enumerate(node):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out or {prefix: []}
    return {prefix: node}


def config_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human-readable differences on the job-defining keys, e.g. ``attempts: 3 -> 5``."""
    def defining(d: dict[str, Any]) -> dict[str, Any]:
        cfg = BlockConfig.model_validate({k: v for k, v in d.items() if k != "status"})
        dumped = cfg.model_dump(mode="json")
        return {k: dumped[k] for k in JOB_DEFINING_KEYS}

    a, b = _flatten(defining(old)), _flatten(defining(new))
    lines = []
    for key in sorted(set(a) | set(b)):
        if a.get(key, "<absent>") != b.get(key, "<absent>"):
            lines.append(f"{key}: {a.get(key, '<absent>')!r} -> {b.get(key, '<absent>')!r}")
    return lines


def write_or_check_snapshot(job: JobPaths, raw_config: dict[str, Any]) -> bool:
    """Write the snapshot for a new job, or check it on resume. Returns True when resuming."""
    snap = snapshot_data(raw_config)
    if job.config_snapshot.exists():
        old = read_yaml(job.config_snapshot)
        if not isinstance(old, dict):
            raise ConfigError("job config snapshot is not a mapping", job.config_snapshot)
        diff = config_diff(old, snap)
        if diff:
            raise JobConfigChangedError(
                f"job {job.name} was started with a different config; refusing to resume. "
                f"Changed: {'; '.join(diff)}. Use a new --job name, or restore the config."
            )
        return True
    atomic_write_text(job.config_snapshot, yaml.safe_dump(snap, sort_keys=False))
    return False


def write_or_check_task_hashes(job: JobPaths, tasks: list[Task], resuming: bool) -> None:
    """Record every task's content when a job starts; on resume refuse tasks that changed since.

    A resume must not grade some trials with the old tests and others with the new ones.
    """
    current = {t.name: t.content_files() for t in tasks}
    if resuming and job.task_hashes.exists():
        recorded = read_json(job.task_hashes)
        changed = []
        for name, files in sorted(current.items()):
            before = recorded.get(name) if isinstance(recorded, dict) else None
            if before is None:
                changed.append(f"{name} (not in the job when it started)")
                continue
            parts = sorted(k for k in set(files) | set(before) if files.get(k) != before.get(k))
            if parts:
                changed.append(f"{name} ({', '.join(parts[:5])}{' ...' if len(parts) > 5 else ''})")
        if changed:
            raise JobConfigChangedError(
                f"job {job.name}: {len(changed)} task(s) changed since the job started; refusing to resume "
                f"(trials would be graded by different versions): {'; '.join(changed)}. Use a new --job name, "
                "or restore the tasks.")
        return
    write_json(job.task_hashes, current)


@dataclass
class JobLock:
    """An exclusive ``flock`` on the job's ``.lock`` file, released by the OS if the runner dies."""

    path: Path
    _fh: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")  # noqa: SIM115 - held open for the lock's lifetime
        if not try_lock(fh):
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            raise JobLockedError(
                f"job {self.path.parent.name} is being run by another trialbook process "
                f"(pid {holder}); wait for it to finish or choose another --job name"
            )
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            unlock(self._fh)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> JobLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
