"""The ``status:`` section of a block's config.yaml, kept current by the tool.

Only the text from the top-level ``status:`` line to the end of that section is rewritten,
so the user's comments and formatting above stay untouched. Writes are atomic and locked.
"""

from __future__ import annotations

import fcntl
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from trialbook.jsonio import atomic_write_text
from trialbook.yamlio import read_yaml

_STATUS_HEADER = "# Kept current by trialbook; edits here are overwritten.\n"


@contextmanager
def _locked(config_path: Path) -> Iterator[None]:
    lock_path = config_path.parent / ".trialbook" / "config.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _split_status(text: str) -> tuple[str, str]:
    """Return (text before the status section, text after it)."""
    lines = text.splitlines(keepends=True)
    start = None
    for i, line in enumerate(lines):
        if re.match(r"^status\s*:", line):
            start = i
            break
    if start is None:
        before = text if text.endswith("\n") or not text else text + "\n"
        return before, ""
    # Comment lines directly above belong to the section header we write.
    head_end = start
    while head_end > 0 and lines[head_end - 1].startswith("# Kept current by trialbook"):
        head_end -= 1
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or lines[end][0] in " \t#"):
        end += 1
    # Trailing blank/comment lines that precede another top-level key stay with that key.
    if end < len(lines):
        while end > start + 1 and (not lines[end - 1].strip() or lines[end - 1].startswith("#")):
            end -= 1
    return "".join(lines[:head_end]), "".join(lines[end:])


def read_status(config_path: Path) -> dict[str, Any]:
    """The current status mapping (empty when the block never ran)."""
    data = read_yaml(config_path) or {}
    status = data.get("status") if isinstance(data, dict) else None
    return status if isinstance(status, dict) else {}


def update_status(config_path: Path, changes: dict[str, Any]) -> dict[str, Any]:
    """Merge ``changes`` into the status section and rewrite it in place; returns the new status."""
    with _locked(config_path):
        text = config_path.read_text(encoding="utf-8")
        status = read_status(config_path)
        status.update(changes)
        before, after = _split_status(text)
        body = yaml.safe_dump({"status": status}, sort_keys=False, default_flow_style=False)
        # the user's own file: its literal secrets are theirs to keep; the status holds none
        atomic_write_text(config_path, before + _STATUS_HEADER + body + after, scrub=False)
        return status
