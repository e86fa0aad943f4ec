"""The block's run state: ``.trialbook/state.json``, current after every trial, and its
snapshot in config.yaml's ``status:`` section (the current operational snapshot the Pier
results format keeps there).

config.yaml is the user's file: its status section is rewritten only when a job starts or
ends (and when a run is archived), so a running job does not churn it in editors and git;
``trialbook status`` reads the live state file. Only the text from the top-level ``status:``
line to the end of that section is rewritten, keeping the user's comments, formatting and
file mode. Writes are atomic and locked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock

from trialbook.errors import TrialbookError
from trialbook.jsonio import atomic_write_text, read_json, write_json
from trialbook.layout.paths import BlockPaths
from trialbook.yamlio import read_yaml

_STATUS_HEADER = "# Kept current by trialbook; edits here are overwritten.\n"


def state_path(config_path: Path) -> Path:
    """Where the live state of the block whose config is ``config_path`` is kept."""
    return BlockPaths(config_path.parent).state


@contextmanager
def _locked(config_path: Path) -> Iterator[None]:
    lock_path = BlockPaths(config_path.parent).config_lock
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(lock_path):
        yield
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




def _config_status(config_path: Path) -> dict[str, Any]:
    data = read_yaml(config_path) or {}
    status = data.get("status") if isinstance(data, dict) else None
    return status if isinstance(status, dict) else {}


def read_status(config_path: Path) -> dict[str, Any]:
    """The block's current status: the live state file, else config.yaml's status section (a
    block last run by an older trialbook); empty when the block never ran."""
    try:
        state = read_json(state_path(config_path))
    except TrialbookError:  # missing, or damaged: the next update rewrites it
        state = None
    return state if isinstance(state, dict) else _config_status(config_path)


def update_status(config_path: Path, changes: dict[str, Any], *, snapshot: bool = True) -> dict[str, Any]:
    """Merge ``changes`` into the block's status; returns the new status.

    The state file is always written; config.yaml's section only with ``snapshot``.
    """
    with _locked(config_path):
        status = read_status(config_path)
        status.update(changes)
        write_json(state_path(config_path), status)
        if snapshot:
            text = config_path.read_text(encoding="utf-8")
            before, after = _split_status(text)
            body = yaml.safe_dump({"status": status}, sort_keys=False, default_flow_style=False)
            new = before + _STATUS_HEADER + body + after
            if new != text:  # the user's own file: its literal secrets are theirs to keep; the status holds none
                atomic_write_text(config_path, new, scrub=False)
        return status
