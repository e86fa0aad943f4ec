"""A persistent cache of token counts, keyed by the SHA-256 of the tokenizer and the example's text.

Exact tokenization is most of a conversion's CPU time; a re-conversion (new filters, a
resumed run, a second job sharing prompts) counts the same texts again. The counts live in a
small SQLite file (a block keeps it under ``.trialbook/cache/``); reads are batched and new
counts are written in one transaction at the end. Worker processes only read it and hand
their new counts to the parent, so one process writes. A cache that cannot be opened or
written only costs speed: counting never depends on it.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

_SCHEMA = "CREATE TABLE IF NOT EXISTS counts (key BLOB PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID"
_BATCH = 500


def text_key(tokenizer: str, text: str) -> bytes:
    """The cache key of ``text`` (an example's messages and tools as JSON) under ``tokenizer`` (its
    name and what identifies its files): SHA-256 of both, 16 bytes kept."""
    h = hashlib.sha256(tokenizer.encode())
    h.update(b"\0")
    h.update(text.encode("utf-8", "surrogatepass"))
    return h.digest()[:16]


class TokenCache:
    """Counts by key in a SQLite file; :meth:`lookup` reads, :meth:`add` and :meth:`save` write."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.new: dict[bytes, int] = {}
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self._broken = False

    def _connection(self) -> sqlite3.Connection | None:
        """This process's connection (a forked worker opens its own; SQLite handles do not cross fork)."""
        if self._broken:
            return None
        if self._conn is None or self._pid != os.getpid():
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(_SCHEMA)
            except (OSError, sqlite3.Error) as exc:
                warnings.warn(f"{self.path}: token-count cache not usable ({exc}); counting everything",
                              stacklevel=3)
                self._broken = True
                return None
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def lookup(self, keys: Sequence[bytes]) -> dict[bytes, int]:
        """The cached counts of ``keys`` (those not cached are absent)."""
        found: dict[bytes, int] = {k: self.new[k] for k in keys if k in self.new}
        conn = self._connection()
        if conn is None:
            return found
        todo = [k for k in keys if k not in found]
        try:
            for i in range(0, len(todo), _BATCH):
                part = todo[i:i + _BATCH]
                found.update(conn.execute(
                    f"SELECT key, n FROM counts WHERE key IN ({','.join('?' * len(part))})", part).fetchall())
        except sqlite3.Error:
            pass
        return found

    def add(self, items: Iterable[tuple[bytes, int]]) -> None:
        """Remember new counts (written by :meth:`save`)."""
        self.new.update(items)

    def take_new(self) -> dict[bytes, int]:
        """The counts added since the last call (a worker returns them to the writing process)."""
        new, self.new = self.new, {}
        return new

    def save(self) -> None:
        """Write the new counts in one transaction."""
        conn = self._connection() if self.new else None
        if conn is None:
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("INSERT OR IGNORE INTO counts(key, n) VALUES (?, ?)", self.new.items())
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self.new = {}
        except sqlite3.Error as exc:
            warnings.warn(f"{self.path}: token counts not cached ({exc})", stacklevel=2)

    def close(self) -> None:
        """Close the database (new counts not saved are dropped)."""
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None
