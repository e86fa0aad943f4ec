"""Is one job's index entry certainly up to date? A read-only check of the stored signatures.

``show JOB`` and ``show --last`` refresh the job before summarising it; when nothing changed,
that refresh is pure overhead: the writer lock, a write transaction and every reader with its
pydantic models imported only to learn that. :func:`unchanged_job` answers from the index and a
few ``stat`` calls instead (the signatures :mod:`trialbook.index.reindex` stored), and says
"not sure" (None) whenever the full refresh could find anything to do, so that refresh runs.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import orjson

from trialbook.errors import TrialbookError
from trialbook.index import signatures as sig
from trialbook.index.db import open_readonly


def _listing_unchanged(watch: str | None, job_dir: str, job_files: set[str]) -> bool:
    """No directory watched for this job gained or lost a visible entry (as ``check_watch`` sees it);
    in the job directory itself, no hidden file either unless it is one of the stored job files
    (a reader's default job files are the job directory's files, hidden ones included)."""
    entries = orjson.loads(watch or "[]")
    if not entries:
        return False
    for d, m, digest in entries:
        try:
            m2 = os.stat(d).st_mtime_ns
        except OSError:
            return False
        if m2 == m:
            continue
        if not digest or sig.dir_digest(d) != digest:
            return False
        if d == job_dir and _hidden_files(d) - job_files:
            return False
    return True


def _hidden_files(d: str) -> set[str]:
    try:
        with os.scandir(d) as it:
            return {e.path for e in it if e.name.startswith(".") and e.is_file(follow_symlinks=False)}
    except OSError:
        return {""}  # unreadable: not sure


def unchanged_job(db: Path, job_dir: Path) -> str | None:
    """The index name of the job at ``job_dir`` when a refresh would change nothing, else None.

    Unchanged means: the job is indexed, its watched directories list the same entries, and
    every stored job-file and trial-file signature matches the file now (a signature stored as
    racy never matches). Never raises: any doubt or error answers None.
    """
    key = os.path.abspath(job_dir)
    try:
        conn = open_readonly(db)
    except (OSError, sqlite3.Error, TrialbookError):
        return None
    try:
        row = conn.execute("SELECT job_name, watch, job_files, job_sig FROM all_jobs WHERE job_dir = ?",
                           (key,)).fetchone()
        if row is None or row["job_sig"] is None or not os.path.isdir(key):
            return None
        job_files = row["job_files"].split("\n") if row["job_files"] else []
        if not _listing_unchanged(row["watch"], key, set(job_files)) or sig.files_sig(job_files) != row["job_sig"]:
            return None
        for files, stored in conn.execute("SELECT files, sig FROM trial_sources WHERE job_name = ?",
                                          (row["job_name"],)):
            if sig.files_sig(files.split("\n")) != stored:
                return None
        return str(row["job_name"])
    except (OSError, sqlite3.Error, ValueError):
        return None
    finally:
        conn.close()
