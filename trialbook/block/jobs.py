"""Finding a job from what a user types: a path in any layout, a job name of the block, or nothing."""

from __future__ import annotations

from pathlib import Path

from trialbook.block.init import find_block
from trialbook.block.status import read_status
from trialbook.errors import ConfigError
from trialbook.run.config import load_config


def find_job(job: str | None, block_dir: Path | None = None) -> Path:
    """An existing path as given; else a job directory of the current block; else its last job.

    The last job is the one named in config.yaml's status, falling back to the newest job dir.
    """
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
    name = read_status(block.config).get("job")
    if isinstance(name, str) and (jobs_dir / name).is_dir():
        return jobs_dir / name
    candidates = sorted(p for p in jobs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if jobs_dir.is_dir() else []
    if not candidates:
        raise ConfigError(f"no job found: {jobs_dir} holds no job directory", not_found=True)
    return max(candidates, key=lambda p: (p.stat().st_mtime, p.name))
