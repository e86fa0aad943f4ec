"""The session log of a run: every ``trialbook.*`` log line, appended to ``logs/session-<job>.log``.

:class:`RunSession` bundles what watches a run (this log and the job monitor). A
:class:`SessionLog` attaches a file handler to the ``trialbook`` logger for the duration
of one run (trial start/finish lines, errors, post-run steps) and remembers where its run
starts in the file, so an archive copies exactly this run's section. Secret values are
redacted as lines are written.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from trialbook.config import redact_text
from trialbook.layout.archive_paths import session_log
from trialbook.layout.paths import BlockPaths
from trialbook.model.trial import TrialRecord
from trialbook.run.monitor import Monitor

if TYPE_CHECKING:
    from trialbook.run.scheduler import JobSetup, ProgressCallback

LOGGER_NAME = "trialbook"
_FORMAT = "%(asctime)s.%(msecs)03dZ %(levelname)-7s %(name)s: %(message)s"

#: Open session logs by job directory, so post-run steps (the archive) find their run's log.
_ACTIVE: dict[Path, SessionLog] = {}


class _RedactingFormatter(logging.Formatter):
    """UTC ISO timestamps; secret-looking environment values never reach the file."""

    converter = time.gmtime

    def __init__(self) -> None:
        super().__init__(_FORMAT, datefmt="%Y-%m-%dT%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


class SessionLog:
    """Context manager: log the ``trialbook`` logger's INFO+ lines of one run to the job's session log."""

    def __init__(self, block: BlockPaths, job: str, job_dir: Path) -> None:
        self.path = session_log(block, job)
        self.job = job
        self.job_dir = job_dir
        self.start_offset = 0
        self._handler: logging.FileHandler | None = None
        self._old_level = logging.NOTSET

    def __enter__(self) -> SessionLog:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.start_offset = self.path.stat().st_size if self.path.exists() else 0
        handler = logging.FileHandler(self.path, mode="a", encoding="utf-8")
        handler.setLevel(logging.INFO)
        handler.setFormatter(_RedactingFormatter())
        logger = logging.getLogger(LOGGER_NAME)
        self._old_level = logger.level
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        self._handler = handler
        _ACTIVE[self.job_dir] = self
        logger.info("session of job %s started (pid %d)", self.job, os.getpid())
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        logger = logging.getLogger(LOGGER_NAME)
        if exc is not None:
            logger.info("session of job %s ended: %s: %s", self.job, exc_type.__name__ if exc_type else "", exc)
        else:
            logger.info("session of job %s ended", self.job)
        _ACTIVE.pop(self.job_dir, None)
        if self._handler is not None:
            logger.removeHandler(self._handler)
            self._handler.close()
            self._handler = None
        logger.setLevel(self._old_level)

    def read_section(self) -> str:
        """This run's part of the log so far (flushed first)."""
        if self._handler is not None:
            self._handler.flush()
        with open(self.path, "rb") as fh:
            fh.seek(self.start_offset)
            return fh.read().decode("utf-8", errors="replace")


def active_session(job_dir: Path) -> SessionLog | None:
    """The session log currently open for the job at ``job_dir`` in this process, if any."""
    return _ACTIVE.get(job_dir)


def read_session_log(block: BlockPaths, job: str, job_dir: Path) -> str | None:
    """The log of the job's current run when one is open here, else its whole session log (None if absent)."""
    live = active_session(job_dir)
    if live is not None:
        return live.read_section()
    path = session_log(block, job)
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None


class RunSession:
    """What watches one run: its session log and its monitor, fed by one fanned-out progress callback.

    ``progress`` (the caller's callback, e.g. the CLI's progress bar) is called first; the
    monitor's report is finalised by :meth:`finish` (or as ``failed`` if the run raised).
    """

    def __init__(self, setup: JobSetup, progress: ProgressCallback | None = None) -> None:
        self.log = SessionLog(setup.block, setup.job.name, setup.job.dir)
        self.monitor = Monitor(setup.block, setup.job, [p.dir_name for p in setup.plans],
                               setup.config.monitor.stall_after_s)
        self._progress = progress

    def progress(self, done: int, total: int, record: TrialRecord | None) -> None:
        """The scheduler's progress callback, fanned out to the caller and the monitor."""
        if self._progress is not None:
            self._progress(done, total, record)
        self.monitor.on_progress(done, total, record)

    def finish(self, state: str) -> None:
        """Write the monitor's final report with the job's end state."""
        self.monitor.finish(state)

    def __enter__(self) -> RunSession:
        self.log.__enter__()
        self.monitor.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self.monitor.__exit__(exc_type, exc, tb)
        finally:
            self.log.__exit__(exc_type, exc, tb)
