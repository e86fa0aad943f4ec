"""The error types trialbook raises for bad input: each names the file and what is wrong.

Callers (the CLI above all) print ``str(err)`` as the one-line message a user sees.
"""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path


class ExitCode(IntEnum):
    """The CLI's exit codes (documented in docs/cli.md); scripts can tell the cases apart."""

    OK = 0
    FAILED = 1  # the command ran and its work failed (a post-run step, a file found invalid)
    USAGE = 2  # bad arguments or bad input: a config, task, or file that is malformed
    NOT_FOUND = 3  # no such block, job, trial, path or file
    CONFLICT = 4  # the job is locked by another runner, or changed since it started
    UNAVAILABLE = 5  # a service the job needs does not answer (a model endpoint)
    CANCELLED = 130  # Ctrl-C


class TrialbookError(Exception):
    """Base class: a problem the user can fix, reported as one clear line.

    ``exit_code`` is what the CLI exits with; ``not_found=True`` marks a missing block, job,
    path or file (exit 3) while keeping the error's type for callers that catch it.
    """

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, path: str | Path | None = None, *, not_found: bool = False) -> None:
        self.path = Path(path) if path is not None else None
        self.message = message
        if not_found:
            self.exit_code = ExitCode.NOT_FOUND
        super().__init__(f"{path}: {message}" if path is not None else message)


class ConfigError(TrialbookError):
    """config.yaml (or another settings file) is missing, malformed or inconsistent."""


class TaskError(TrialbookError):
    """A task directory or instance is broken (missing files, unsafe name, bad metadata)."""


class SourceError(TrialbookError):
    """A file of a results tree (any layout) cannot be read or does not match its format."""


class JobLockedError(TrialbookError):
    """Another runner holds the job's lock."""

    exit_code = ExitCode.CONFLICT


class ServiceUnavailableError(TrialbookError):
    """A service the job needs (a model endpoint) does not answer; found before any trial runs."""

    exit_code = ExitCode.UNAVAILABLE


class JobConfigChangedError(TrialbookError):
    """A job is resumed with a config that differs from the one it was started with."""

    exit_code = ExitCode.CONFLICT
