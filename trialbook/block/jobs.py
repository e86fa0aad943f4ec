"""The block's last job (what every command means when no job is named); finding a job from what a
user types is :func:`trialbook.index.locate.find_job`."""

from __future__ import annotations

from pathlib import Path


def last_job_dir(jobs_dir: Path) -> Path | None:
    """The block's last job: the one run most recently, the one every command means by default.

    "Most recently run" is the ``started_at`` its runner wrote (a resumed job counts from its
    resume), then the directory's modification time, then the name; None when there is no job.
    """
    from trialbook.layout.paths import JobPaths
    from trialbook.sources.native_jobs import (  # no reader, no model
        job_dirs,
        job_kind,
        read_aggregate,
    )

    if not jobs_dir.is_dir():
        return None
    best: tuple[str, float, str] | None = None
    found: Path | None = None
    for job_dir in job_dirs(jobs_dir):
        started = read_aggregate(job_dir, JobPaths(job_dir, kind=job_kind(job_dir)).aggregate).get("started_at")
        key = (started or "", job_dir.stat().st_mtime, job_dir.name)
        if best is None or key > best:
            best, found = key, job_dir
    return found
