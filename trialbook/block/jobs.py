"""Finding a job from what a user types: a path in any layout, a job name of the block, or nothing."""

from __future__ import annotations

from pathlib import Path

from trialbook.block.init import find_block
from trialbook.config import load_config
from trialbook.errors import ConfigError


def last_job_dir(jobs_dir: Path) -> Path | None:
    """The block's last job: the one run most recently, the one every command means by default.

    "Most recently run" is the ``started_at`` its runner wrote (a resumed job counts from its
    resume), then the directory's modification time, then the name; None when there is no job.
    """
    from trialbook.sources.registry import get_reader

    if not jobs_dir.is_dir():
        return None
    reader = get_reader("native")
    best: tuple[str, float, str] | None = None
    found: Path | None = None
    for job_dir in reader.job_dirs(jobs_dir):
        view = reader.read_trials(job_dir, [])
        key = (view.started_at or "", job_dir.stat().st_mtime, job_dir.name)
        if best is None or key > best:
            best, found = key, job_dir
    return found


def find_job(job: str | None, block_dir: Path | None = None) -> Path:
    """An existing path as given; else a job directory of the current block; else its last job
    (:func:`last_job_dir`)."""
    if job is not None and Path(job).exists():
        return Path(job)
    block = find_block(block_dir)
    config = load_config(block.config)
    jobs_dir = config.output_dir(block.root)
    if job is not None:
        if not (jobs_dir / job).is_dir():
            raise ConfigError(f"no job {job!r}: neither a path nor a job directory in {jobs_dir}",
                              not_found=True)
        return jobs_dir / job
    last = last_job_dir(jobs_dir)
    if last is None:
        raise ConfigError(f"no job found: {jobs_dir} holds no job directory", not_found=True)
    return last
