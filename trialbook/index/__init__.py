"""``results/index.db``: a SQLite cache of every indexed results tree (spec 004), rebuilt from the files.

``reindex`` updates it incrementally, ``queries`` reads it, ``db`` opens it (WAL, writer
lock, read-only access, rebuild on corruption) and ``locate`` finds the index, the roots
and the job a command is about. The schema is documented in ``schema.sql``.
"""

from typing import Any

from trialbook.index.db import open_readonly, open_writable, run_readonly_query
from trialbook.index.roots import RootSpec

#: Imported on first use. The ``reindex`` function itself is imported from its module,
#: ``trialbook.index.reindex`` (a lazy package attribute of that name would clash with the module).
_REINDEX_NAMES = ("ReindexStats", "refresh_job")

__all__ = [
    "ReindexStats",
    "RootSpec",
    "open_readonly",
    "open_writable",
    "refresh_job",
    "run_readonly_query",
]


def __getattr__(name: str) -> Any:
    """The reindex API, imported on first use: it brings every reader, which a read of an
    up-to-date index (``show --last``) does without."""
    if name in _REINDEX_NAMES:
        from trialbook.index.reindex import ReindexStats, refresh_job

        return {"ReindexStats": ReindexStats, "refresh_job": refresh_job}[name]
    raise AttributeError(f"module 'trialbook.index' has no attribute {name!r}")
