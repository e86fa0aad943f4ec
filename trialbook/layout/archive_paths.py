"""Where run archives and the live run logs of a block live (specs 000 and 001, "Run archives").

::

    <block>/
      artifacts/
        archives/                     BlockPaths.archives
          run_NNN/                    ArchivePaths (NNN zero-padded, 3 digits minimum)
            metadata.yaml             run id, timestamps, results, repo commits, inputs
            config.yaml               config as at run time, secrets redacted
            scripts/                  copy of the block's scripts/
            session.log               the run's session log, secrets redacted
            monitor.md                the monitor's last report
            inputs/                   copy of the run's inputs: tasks/<task>/... or the instances file
          .tmp-<pid>-<random>/        an archive being built (renamed onto run_NNN when done)
        index.yaml                    BlockPaths.archive_index (one entry per archive)
        .index.lock                   index_lock(): flock taken while claiming a number
      logs/
        session-<job>.log             session_log(): appended to by every run of the job
        monitor.md, monitor.json      monitor_report() / monitor_state(): the live monitor
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from trialbook.layout.paths import BlockPaths, _check_component

ARCHIVE_PREFIX = "run_"
TMP_PREFIX = ".tmp-"
_ARCHIVE_NAME = re.compile(r"^run_(\d{3,})$")


def archive_dir_name(number: int) -> str:
    """``run_001`` for 1: zero-padded to three digits (more digits past 999)."""
    if number < 1:
        raise ValueError(f"archive numbers start at 1, got {number}")
    return f"{ARCHIVE_PREFIX}{number:03d}"


def parse_archive_number(name: str) -> int | None:
    """The number of a ``run_NNN`` directory name, None for any other name."""
    m = _ARCHIVE_NAME.match(name)
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class ArchivePaths:
    """Files of one archive directory ``artifacts/archives/run_NNN/`` (or its temp twin)."""

    dir: Path

    @property
    def number(self) -> int | None:
        return parse_archive_number(self.dir.name)

    @property
    def metadata(self) -> Path:
        return self.dir / "metadata.yaml"

    @property
    def config(self) -> Path:
        return self.dir / "config.yaml"

    @property
    def scripts(self) -> Path:
        return self.dir / "scripts"

    @property
    def session_log(self) -> Path:
        return self.dir / "session.log"

    @property
    def monitor(self) -> Path:
        return self.dir / "monitor.md"

    @property
    def inputs(self) -> Path:
        return self.dir / "inputs"


def archive(block: BlockPaths, number: int) -> ArchivePaths:
    """The archive ``run_NNN`` of a block."""
    return ArchivePaths(block.archives / archive_dir_name(number))


def index_lock(block: BlockPaths) -> Path:
    """The lock file serialising number claims and index.yaml rewrites."""
    return block.artifacts / ".index.lock"


def session_log(block: BlockPaths, job: str) -> Path:
    """The session log every run of ``job`` appends to."""
    return block.logs / f"session-{_check_component(job, 'job')}.log"


def monitor_report(block: BlockPaths) -> Path:
    """The live monitor report (Markdown) of the block's current job."""
    return block.logs / "monitor.md"


def monitor_state(block: BlockPaths) -> Path:
    """The same report as JSON (what ``trialbook monitor --json`` prints)."""
    return block.logs / "monitor.json"
