"""Advisory ``flock`` locks on a file the caller has open: the one home of such locks.

``filelock`` (used where a lock file exists only to be locked: the index, the dashboard, the
archive index) owns its lock file: it opens, may truncate and may remove it. These helpers lock
files whose content matters while they are locked: a JSONL log being appended to, and a job's
``.lock``, which names the pid of the runner holding it. The OS releases them if the process dies.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def try_lock(fh: IO[str] | IO[bytes]) -> bool:
    """Take an exclusive lock on ``fh`` without waiting; False if another process holds it."""
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def unlock(fh: IO[str] | IO[bytes]) -> None:
    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@contextmanager
def locked(fh: IO[str] | IO[bytes]) -> Iterator[None]:
    """Hold an exclusive lock on ``fh`` (waiting for it) for the ``with`` block."""
    fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
    try:
        yield
    finally:
        unlock(fh)


def is_held(path: Path) -> bool:
    """Whether some process holds the lock of ``path`` right now (a missing file is not held)."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below; reading never changes the file
    except FileNotFoundError:
        return False
    with fh:
        if not try_lock(fh):
            return True
        unlock(fh)
        return False
