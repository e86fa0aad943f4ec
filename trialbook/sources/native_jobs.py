"""Which directories are native jobs, and a job's aggregate: what ``--last`` needs, without the reader.

Kept apart from :mod:`trialbook.sources.native` (which validates every record with pydantic) so
that finding the block's last job imports no model; the reader uses these same functions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from trialbook.errors import SourceError
from trialbook.sources.safe import SafeTree


def is_job_dir(path: Path) -> bool:
    """A native job: a config snapshot and an aggregate, or at least one trial record."""
    return (path / "config.yaml").is_file() and (
        (path / "results.json").is_file() or (path / "result.json").is_file()
        or any((p / "trial.json").is_file() for p in path.iterdir() if p.is_dir())
    )


def detect(path: Path) -> bool:
    """``path`` is a native trial, block, job, or directory of jobs."""
    if path.is_file():
        return False
    if (path / "trial.json").is_file():
        return True
    if (path / "artifacts" / "jobs").is_dir() and (path / "config.yaml").is_file():
        return True
    if is_job_dir(path):
        return True
    # a directory of jobs: a child with a config.yaml first (one stat per child, not a Path and
    # several stats: this runs on every directory given to `show`, e.g. Harbor jobs of 5k trials)
    with os.scandir(path) as entries:
        return any(e.is_dir() and os.path.isfile(f"{e.path}/config.yaml") and is_job_dir(Path(e.path))
                   for e in entries)


def job_dirs(path: Path) -> list[Path]:
    """The native jobs at ``path``: a trial's job, a block's jobs, one job, or a jobs directory's."""
    if (path / "trial.json").is_file():
        return [path.parent]
    if (path / "artifacts" / "jobs").is_dir():
        path = path / "artifacts" / "jobs"
    if is_job_dir(path):
        return [path]
    return [p for p in sorted(path.iterdir()) if p.is_dir() and is_job_dir(p)]


def job_kind(job_dir: Path) -> str:
    """``trajgen`` when the job has only ``result.json`` (its aggregate), else ``eval`` (``results.json``)."""
    return "trajgen" if (job_dir / "result.json").is_file() and not (job_dir / "results.json").is_file() else "eval"


def read_aggregate(job_dir: Path, aggregate: Path, tree: SafeTree | None = None) -> dict[str, Any]:
    """The job's aggregate as a dict (empty when missing or unreadable), read without following links."""
    tree = tree or SafeTree(job_dir, quiet=True)
    if not os.path.isfile(aggregate):
        return {}
    try:
        loaded = tree.read_json(aggregate)
    except SourceError:
        return {}
    return loaded if isinstance(loaded, dict) else {}
