"""Opening ``results/index.db``: WAL mode, a writer lock, read-only access, rebuild on corruption.

The index is a cache of the files, so it never needs repair: a database that cannot be read
(not SQLite, malformed, written by another schema version) is deleted with a warning and
rebuilt. An index written by an older trialbook is migrated on the way: the roots it
remembered (``reindex ROOT`` adds them) are carried into the new database, so the next
reindex lists them again and nothing a user indexed is forgotten. Writers (``reindex``, the post-run step) serialise on an exclusive lock file
``index.db.lock``; readers never block thanks to WAL.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from trialbook.errors import TrialbookError

#: Bump when schema.sql changes incompatibly: older databases are then rebuilt (roots kept).
#: 2: trialbook's tables renamed all_jobs/all_trials; the legacy views take the Pier format's
#: names (experiments, runs, variants, tasks, trials).
#: 3: trial_sources.identity, so a changed trial is read without re-reading its siblings.
SCHEMA_VERSION = "3"

_DENIED_ACTIONS = {
    getattr(sqlite3, name) for name in (
        "SQLITE_INSERT", "SQLITE_UPDATE", "SQLITE_DELETE", "SQLITE_CREATE_TABLE",
        "SQLITE_CREATE_INDEX", "SQLITE_CREATE_VIEW", "SQLITE_CREATE_TRIGGER",
        "SQLITE_CREATE_TEMP_TABLE", "SQLITE_CREATE_TEMP_INDEX", "SQLITE_CREATE_TEMP_VIEW",
        "SQLITE_CREATE_TEMP_TRIGGER", "SQLITE_DROP_TABLE", "SQLITE_DROP_INDEX", "SQLITE_DROP_VIEW",
        "SQLITE_DROP_TRIGGER", "SQLITE_DROP_TEMP_TABLE", "SQLITE_DROP_TEMP_INDEX",
        "SQLITE_DROP_TEMP_VIEW", "SQLITE_DROP_TEMP_TRIGGER", "SQLITE_ALTER_TABLE", "SQLITE_ATTACH",
        "SQLITE_DETACH", "SQLITE_REINDEX",
        "SQLITE_ANALYZE", "SQLITE_CREATE_VTABLE", "SQLITE_DROP_VTABLE",
    ) if hasattr(sqlite3, name)
}


class IndexCorrupt(TrialbookError):
    """The index database cannot be used as is (it will be rebuilt from the files)."""


class ReadOnlyQueryError(TrialbookError):
    """A statement given to the read-only query interface tried to change something."""


def schema_sql() -> str:
    """The text of ``schema.sql`` shipped with the package."""
    return resources.files("trialbook.index").joinpath("schema.sql").read_text(encoding="utf-8")


def is_corruption(exc: BaseException) -> bool:
    """True for SQLite errors meaning "this file is not a usable database" (not locks or SQL mistakes)."""
    if isinstance(exc, IndexCorrupt):
        return True
    if not isinstance(exc, sqlite3.DatabaseError) or isinstance(exc, sqlite3.OperationalError):
        return False
    return not isinstance(exc, sqlite3.IntegrityError | sqlite3.ProgrammingError)


def remove_index(path: Path) -> None:
    """Delete the database and its WAL/SHM side files (the lock file stays)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()


@contextlib.contextmanager
def writer_lock(path: Path, timeout: float = 600.0) -> Iterator[None]:
    """Exclusive lock serialising writers of the index at ``path`` (waits up to ``timeout`` s)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock  # only writers lock: a read of an up-to-date index needs no lock

    with FileLock(f"{path}.lock", timeout=timeout):
        yield


def _configure(conn: sqlite3.Connection) -> None:
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA foreign_keys = ON")


def _check_schema(conn: sqlite3.Connection) -> None:
    try:
        row = conn.execute("SELECT value FROM index_meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.OperationalError as exc:  # no such table: not our database (or empty)
        raise IndexCorrupt(f"not a trialbook index ({exc})") from None
    if row is None or row[0] != SCHEMA_VERSION:
        raise IndexCorrupt(f"index schema {row[0] if row else 'unknown'}, expected {SCHEMA_VERSION}")


def _create(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    _configure(conn)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    fresh = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    if fresh:
        conn.executescript(schema_sql())
        conn.execute("INSERT OR REPLACE INTO index_meta(key, value) VALUES ('schema_version', ?)",
                     (SCHEMA_VERSION,))
    _check_schema(conn)
    return conn


def remembered_roots(path: Path) -> list[tuple[str, str]]:
    """The (root, layout) pairs an existing index of any schema version remembers ([] if unreadable)."""
    if not path.is_file():
        return []
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT root, layout FROM roots").fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return []
    return [(str(r[0]), str(r[1])) for r in rows if isinstance(r[0], str) and isinstance(r[1], str)]


def open_writable(path: Path) -> tuple[sqlite3.Connection, bool]:
    """Open (creating if needed) the index for writing; returns (connection, rebuilt).

    A corrupt, foreign or old-schema database is removed with a warning and created afresh
    (``rebuilt`` is then True), keeping the roots it remembered. Call under :func:`writer_lock`.
    """
    try:
        return _create(path), False
    except sqlite3.DatabaseError as exc:
        if not is_corruption(exc):
            raise
        reason = str(exc)
    except IndexCorrupt as exc:
        reason = exc.message
    warnings.warn(f"{path}: index unusable ({reason}); rebuilding it from the files", stacklevel=2)
    roots = remembered_roots(path)
    remove_index(path)
    conn = _create(path)
    conn.executemany("INSERT OR IGNORE INTO roots(root, layout, watch) VALUES (?, ?, '[]')", roots)
    return conn, True


#: Pragmas that take a table name and only describe it (``PRAGMA table_info(trials)``).
_DESCRIBING_PRAGMAS = frozenset({"table_info", "table_xinfo", "index_list", "index_info", "index_xinfo",
                                 "foreign_key_list"})


def _deny_writes(action: int, arg1: str | None, arg2: str | None, *_rest: object) -> int:
    if action == sqlite3.SQLITE_PRAGMA:  # reading a pragma is fine, setting one is not
        if arg2 is None or (arg1 or "").lower() in _DESCRIBING_PRAGMAS:
            return sqlite3.SQLITE_OK
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_DENY if action in _DENIED_ACTIONS else sqlite3.SQLITE_OK


def open_readonly(path: Path) -> sqlite3.Connection:
    """Open the index read-only (URI ``mode=ro``, ``query_only``, and an authorizer that refuses writes)."""
    if not path.is_file():
        raise IndexCorrupt("index not found", path)
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None,
                           check_same_thread=False)
    _configure(conn)
    conn.execute("PRAGMA query_only = ON")
    try:
        _check_schema(conn)
    except sqlite3.DatabaseError as exc:
        conn.close()
        if is_corruption(exc):
            raise IndexCorrupt(str(exc), path) from None
        raise
    except IndexCorrupt:
        conn.close()
        raise
    conn.set_authorizer(_deny_writes)
    return conn


#: Defaults of ``trialbook sql``: a query stops after this long, and returns at most this many rows.
QUERY_TIMEOUT_S = 10.0
QUERY_MAX_ROWS = 10_000
#: Largest single value (string or blob) a query may build, and largest result kept: a query
#: like ``randomblob(1e9)`` or a doubling recursive CTE fails at once instead of filling memory.
QUERY_MAX_VALUE_BYTES = 16 * 1024 * 1024
QUERY_MAX_RESULT_BYTES = 64 * 1024 * 1024


@dataclass
class QueryResult:
    """Columns (in the query's order), rows, and whether rows were cut (``truncated``: why, else None)."""

    columns: list[str]
    rows: list[tuple]
    truncated: str | None = None


def run_readonly_query(conn: sqlite3.Connection, sql: str, params: tuple = ()) -> tuple[list[str], list[tuple]]:
    """Run one read-only statement; returns (column names, rows). Writes raise ReadOnlyQueryError."""
    result = run_limited_query(conn, sql, params, timeout_s=None, max_rows=None, max_bytes=None)
    return result.columns, result.rows


def _value_size(value: object) -> int:
    return len(value) if isinstance(value, str | bytes) else 8


def run_limited_query(conn: sqlite3.Connection, sql: str, params: tuple = (), *,
                      timeout_s: float | None = QUERY_TIMEOUT_S,
                      max_rows: int | None = QUERY_MAX_ROWS,
                      max_bytes: int | None = QUERY_MAX_RESULT_BYTES) -> QueryResult:
    """Run one read-only statement within a time limit, a row cap and a size cap (a runaway query
    can neither hang nor exhaust memory); errors name what is wrong, and an unknown column lists
    the known ones. Rows past a cap are not fetched; ``truncated`` says which cap cut them."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    if deadline is not None:
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    old_length = conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, QUERY_MAX_VALUE_BYTES) if max_bytes else None
    rows: list[tuple] = []
    truncated: str | None = None
    try:
        cur = conn.execute(sql, params)
        size = 0
        for row in cur:  # one row at a time: the caps apply before memory fills
            if max_rows is not None and len(rows) >= max_rows:
                truncated = f"only the first {max_rows:,} rows (--max-rows to see more)"
                break
            size += sum(_value_size(v) for v in row)
            if max_bytes is not None and size > max_bytes:
                truncated = (f"only the first {len(rows):,} rows: the result passed "
                             f"{max_bytes // (1024 * 1024)} MiB (select fewer columns or rows)")
                break
            rows.append(tuple(row))
    except sqlite3.ProgrammingError as exc:  # e.g. more than one statement
        raise TrialbookError(f"SQL error: {exc}") from None
    except sqlite3.DatabaseError as exc:
        msg = str(exc)
        if "interrupted" in msg and deadline is not None and time.monotonic() > deadline:
            raise TrialbookError(f"SQL query stopped after {timeout_s:g} s (allow more with --timeout)") from None
        if "not authorized" in msg or "readonly" in msg or "read-only" in msg:
            raise ReadOnlyQueryError(
                "refused: the index is read-only here (it is derived from the files; "
                "change the files and run `trialbook reindex`)") from None
        if "too big" in msg and old_length is not None:
            raise TrialbookError(f"SQL query stopped: it built a value over "
                                 f"{QUERY_MAX_VALUE_BYTES // (1024 * 1024)} MiB ({msg})") from None
        if msg.startswith("no such column"):
            msg += "; " + _known_columns(conn, sql)
        raise TrialbookError(f"SQL error: {msg}") from None
    finally:
        if deadline is not None:
            conn.set_progress_handler(None, 0)
        if old_length is not None:
            conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, old_length)
    columns = [d[0] for d in cur.description or ()]
    return QueryResult(columns, rows, truncated)


def table_columns(conn: sqlite3.Connection) -> dict[str, tuple[str, list[str]]]:
    """Every table and view of the index: name -> (``table``|``view``, its column names in order)."""
    out: dict[str, tuple[str, list[str]]] = {}
    names = conn.execute("SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') "
                         "AND name NOT LIKE 'sqlite_%' ORDER BY type, name").fetchall()
    for name, kind in names:
        cols = [row[1] for row in conn.execute(f"PRAGMA table_info({_quote(name)})").fetchall()]
        out[name] = (kind, cols)
    return out


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _known_columns(conn: sqlite3.Connection, sql: str) -> str:
    """``columns of trials: a, b, ...`` for the tables the query names (all of them if none found)."""
    tables = table_columns(conn)
    named = [m.lower() for m in re.findall(r"\b(?:from|join)\s+[\"`\[]?(\w+)", sql, re.IGNORECASE)]
    chosen = [t for t in tables if t.lower() in named] or list(tables)
    return "; ".join(f"columns of {t}: {', '.join(tables[t][1])}" for t in chosen)
