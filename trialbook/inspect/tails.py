"""The last lines of a trial's verifier output and agent output, for ``trialbook analyze``.

A failed trial is explained by what its test printed and what the agent wrote to stderr,
not only by its outcome. Files come from untrusted trees: the read never follows a link,
never opens anything but a regular file (a FIFO would block), and reads only the tail.
"""

from __future__ import annotations

import os
from pathlib import Path

from trialbook.untrusted import open_regular

#: How much of the end of a file is read, and how many of its last lines are kept.
TAIL_BYTES = 16 * 1024
TAIL_LINES = 20


def read_tail(path: Path, *, max_bytes: int = TAIL_BYTES, max_lines: int = TAIL_LINES) -> str | None:
    """The last ``max_lines`` lines of a regular file (None when missing, a link, or not a regular file)."""
    opened = open_regular(path)
    if opened is None:
        return None
    fd, info = opened
    try:
        start = max(0, info.st_size - max_bytes)
        data = os.pread(fd, max_bytes, start)
    finally:
        os.close(fd)
    text = data.decode("utf-8", errors="replace")
    lines = text.splitlines()
    if start > 0 and lines:
        lines = lines[1:]  # the first line was cut by the byte window
    return "\n".join(lines[-max_lines:])


def output_tails(files: dict[str, Path]) -> dict[str, str]:
    """``{"verifier_output": ..., "agent_output": ...}`` for the files that exist and are not empty."""
    out = {}
    for key, path in files.items():
        tail = read_tail(path)
        if tail and tail.strip():
            out[key] = tail
    return out
