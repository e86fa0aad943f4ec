"""What ``trialbook show`` does: summarise a job and write summary.json / summary.md beside it.

A job found by name or ``--last`` is first brought up to date in ``results/index.db``
(only its changed trials are re-read; when nothing changed, a read-only signature check
says so without importing any reader) and summarised from the index, which is what makes
``show`` fast on large jobs. A path is read straight from its files, in any layout. The
summary is written beside the job only when the job is trialbook's own (another harness's
tree is left untouched unless ``write=True``), or into ``out`` when given.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trialbook.errors import TrialbookError
from trialbook.index.db import open_readonly
from trialbook.index.freshness import unchanged_job
from trialbook.index.locate import JobRef
from trialbook.index.queries import summary_from_index
from trialbook.results.summary import summarize_job, summary_dir, write_summary

# The readers (trialbook.sources.registry), trialbook.index.reindex and the pydantic models
# they bring are imported below only where a job must be read from its files.


@dataclass
class ShownSummary:
    """One job's summary, where it was written, and how it was computed."""

    summary: dict[str, Any]
    source: str  # "index" or "files"
    written: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Why nothing was written (a foreign tree left untouched), for the user.
    not_written: str | None = None


def _write(shown: ShownSummary, job_dir: Path, out: Path | None, write: bool | None,
           validate: bool = True) -> ShownSummary:
    """Write the summary: ``write=None`` writes into ``out`` or beside trialbook's own jobs only."""
    if write is False:
        return shown
    layout = shown.summary.get("layout")
    if write is None and out is None and layout != "native":
        shown.not_written = (f"summary not written into this {layout} tree "
                             "(--write writes it beside the job, --out DIR elsewhere)")
        return shown
    target = out if out is not None else summary_dir(job_dir)
    try:
        shown.written = list(write_summary(shown.summary, target, validate=validate))
    except OSError as exc:
        shown.warnings.append(f"summary not written to {target} ({exc.strerror or exc}); "
                              "use --out DIR for a read-only source")
    return shown


def summary_via_index(ref: JobRef, db: Path) -> dict[str, Any]:
    """Refresh ``ref`` in the index at ``db`` and summarise it from the index rows."""
    name = unchanged_job(db, ref.job_dir)
    if name is None:
        from trialbook.index.reindex import refresh_job

        name = refresh_job(db, ref.job_dir, ref.layout)
    if name is None:
        raise TrialbookError("job directory is gone", ref.job_dir)
    conn = open_readonly(db)
    try:
        return summary_from_index(conn, name)
    finally:
        conn.close()


def show_job(ref: JobRef, db: Path, *, out: Path | None = None, write: bool | None = None,
             validate: bool = True) -> ShownSummary:
    """Summary of a named job, from the index when it can be used, else from the files.

    ``validate=False`` writes it without the schema check (see :func:`write_summary`).
    """
    warnings: list[str] = []
    try:
        shown = ShownSummary(summary_via_index(ref, db), "index")
    except (OSError, sqlite3.Error) as exc:
        warnings.append(f"index {db} not usable ({exc}); summarised from the files")
        from trialbook.sources.registry import get_reader

        job = get_reader(ref.layout).read_trials(ref.job_dir, None)
        shown = ShownSummary(summarize_job(job), "files")
    shown.warnings += warnings
    return _write(shown, ref.job_dir, out, write, validate)


def show_path(path: Path, *, layout: str | None = None, out: Path | None = None,
              write: bool | None = None, workers: int | None = None) -> list[ShownSummary]:
    """Summaries of every job under ``path`` (any layout), read from the files.

    With ``out``, one job's files go into ``out`` itself and several jobs' into ``out/<job>``.
    A single big job is read by ``workers`` processes (None: one per CPU; 1: this one).
    """
    from trialbook.sources.registry import detect_layout, get_reader

    reader = get_reader(layout or detect_layout(path))
    if workers != 1:
        from trialbook.app.parallel_summary import can_split, summarize_in_parts

        summary = None
        if can_split(reader) and reader.job_dirs(path) == [path]:
            summary = summarize_in_parts(reader, path, workers)
        if summary is not None:
            return [_write(ShownSummary(summary, "files"), path, out, write)]
    jobs = reader.read(path)
    if not jobs:
        raise TrialbookError("no job found here", path, not_found=True)
    shown = []
    for job in jobs:
        target = None if out is None else (out if len(jobs) == 1 else out / job.name)
        shown.append(_write(ShownSummary(summarize_job(job), "files"), job.path, target, write))
    return shown
