"""Opening the index for a query command (``list``, ``sql``): refreshed first, rebuilt if unusable.

Query commands bring the index up to date with an incremental reindex (cheap when little
changed) unless told not to, then open it read-only. A missing index is built; a corrupt
one (or one written by an older trialbook) is rebuilt with a warning, keeping the roots it
remembered; an index that cannot be written (a read-only location) is queried as it is, with
a warning.
"""

from __future__ import annotations

import sqlite3
import warnings
from collections.abc import Sequence
from pathlib import Path

from trialbook.errors import TrialbookError
from trialbook.index.db import IndexCorrupt, open_readonly
from trialbook.index.reindex import ReindexStats, RootSpec, reindex


def refresh(db: Path, roots: Sequence[RootSpec]) -> ReindexStats | None:
    """Incremental reindex of ``roots`` plus the roots the index knows; None when the index cannot be written."""
    try:
        return reindex(db, roots)
    except (OSError, sqlite3.OperationalError) as exc:
        if not db.is_file():
            raise
        warnings.warn(f"{db}: could not update the index ({exc}); showing it as it is", stacklevel=2)
        return None


def open_for_query(db: Path, roots: Sequence[RootSpec], *, refresh_first: bool = True) -> sqlite3.Connection:
    """A read-only connection to an up-to-date index (see the module docstring)."""
    if not db.is_file() and not roots:
        raise TrialbookError(f"no index at {db}: run inside a block, give --db, or build one with "
                             "`trialbook reindex ROOT...`")
    if refresh_first or not db.is_file():
        refresh(db, roots)
    try:
        return open_readonly(db)
    except IndexCorrupt as exc:
        warnings.warn(f"{db}: index unusable ({exc.message}); rebuilding it from the files", stacklevel=2)
        reindex(db, roots)  # rebuilds what cannot be used, keeping the roots it remembered
        return open_readonly(db)
