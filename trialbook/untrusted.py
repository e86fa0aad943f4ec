"""Reading a file that untrusted code (an agent, a task script) wrote, without trusting it.

Never follows a link, never blocks on a FIFO or device, never reads past a size cap: the
host-side rules of the sandbox boundary, in one place for every caller.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


def open_regular(path: str | Path) -> tuple[int, os.stat_result] | None:
    """``(fd, status)`` of a regular file opened without following a final link or blocking (a FIFO
    or device is refused after ``fstat``, before any read); None for anything else. Close the fd."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
    except OSError:
        os.close(fd)
        return None
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return None
    return fd, st


def read_capped(path: Path, max_bytes: int) -> bytes:
    """A sandbox-written regular file's bytes, refusing links, non-regular files and oversize ones.

    Raises ``ValueError`` with the reason (the caller turns it into the trial's error).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ValueError(f"{path.name} is a symbolic link (not followed)") from None
        raise ValueError(f"{path.name} cannot be read: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{path.name} is not a regular file")
        if info.st_size > max_bytes:
            raise ValueError(f"{path.name} is larger than {max_bytes} bytes")
        data = os.read(fd, max_bytes + 1)
        if len(data) > max_bytes:
            raise ValueError(f"{path.name} is larger than {max_bytes} bytes")
        return data
    finally:
        os.close(fd)
