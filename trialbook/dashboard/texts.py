"""Keeping big trials light: long texts are cut to a head, the rest goes to on-demand chunk files.

A trial page must open fast even when its trajectory is 200 MB. Every text shown on a trial
page (a message, a tool output, a log) goes through :class:`TextStore`: short texts stay
inline; a long one becomes ``{"head", "len", "more", "cut"}`` where ``more`` lists the data
keys of the chunks the page loads when the user clicks "show more", and ``cut`` says the
site stores only the first :data:`TEXT_CAP` characters of it (the page says so and names
the source file). A trial stores at most :data:`TRIAL_CAP` characters in all; past that,
texts keep only their head. Steps beyond the first :data:`STEPS_INLINE` go to step pages
loaded the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trialbook.sources.safe import SafeTree
from trialbook.untrusted import open_regular

HEAD = 4_000
CHUNK = 250_000
TEXT_CAP = 2_000_000
TRIAL_CAP = 40_000_000
STEPS_INLINE = 100
STEPS_PER_PAGE = 200
#: Bytes read at most from one file shown on a trial page (test output, patch, logs).
FILE_READ_CAP = TEXT_CAP * 2


@dataclass
class TextStore:
    """The texts of one trial page and the chunk files they spill into (see module docstring)."""

    prefix: str  # data key prefix of this trial's extra files, e.g. "more/<job id>/<trial id>"
    stored: int = 0
    files: dict[str, Any] = field(default_factory=dict)  # data key -> content

    def text(self, value: Any) -> Any:
        """``value`` as shown: None stays None, a short text stays itself, a long one is split."""
        if value is None:
            return None
        s = value if isinstance(value, str) else str(value)
        if len(s) <= HEAD:
            return s
        keep = min(len(s), TEXT_CAP, max(HEAD, TRIAL_CAP - self.stored))
        self.stored += keep
        more = []
        for start in range(HEAD, keep, CHUNK):
            key = f"{self.prefix}/t{len(self.files)}"
            self.files[key] = s[start:min(start + CHUNK, keep)]
            more.append(key)
        return {"head": s[:HEAD], "len": len(s), "more": more, "cut": keep < len(s)}

    def page(self, items: list[Any]) -> str:
        """Store a page of steps as its own data file; returns its key."""
        key = f"{self.prefix}/s{len(self.files)}"
        self.files[key] = items
        return key


def read_head(tree: SafeTree, path: Path, limit: int = FILE_READ_CAP) -> tuple[str, int] | None:
    """(up to ``limit`` bytes of ``path`` as text, its full size), or None when it is no regular file.

    The file may have been made by a sandboxed agent: the path must stay inside the trial's
    tree, the last component is opened without following a link, and a FIFO or device is
    refused before any read (``O_NONBLOCK``, then ``fstat``), so nothing can block the build.
    """
    if not tree.is_file(path):
        return None
    opened = open_regular(os.path.realpath(path))
    if opened is None:
        return None
    fd, st = opened
    try:
        chunks, left = [], limit
        while left > 0:
            block = os.read(fd, min(left, 1 << 20))
            if not block:
                break
            chunks.append(block)
            left -= len(block)
    except OSError:
        return None
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8", "replace"), st.st_size
