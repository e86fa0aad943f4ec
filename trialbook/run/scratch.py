"""What a trial's sandbox can see, kept apart from what the host writes, and brought back safely.

Every directory a sandboxed command can write is a per-trial scratch directory::

    .trialbook/scratch/<job>/<trial>/
      app/             /app            the workspace (seeded from the task)
      logs/agent/      /logs/agent     the agent's log directory (read-only for the verifier)
      logs/verifier/   /logs/verifier  made empty just before the verifier; never seen by the agent
      tests/           /tests          a copy of the task's tests/, read-only, verifier only
      solution/        /solution       a copy of the task's solution/, read-only, oracle only

The files trialbook itself writes (``trial.json``, the LiteLLM log, ``trajectory.json``,
stdout/stderr, ``verdict.json``) live in the trial directory, which no sandbox sees. After a
phase, :func:`harvest` copies what the sandbox left into the trial directory: regular files
only (links, FIFOs, devices and sockets are skipped and noted), opened with ``O_NOFOLLOW``
and ``O_NONBLOCK``, size-capped, never over a file the host wrote.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from trialbook.run.environments.local import Mount, give_to_sandbox

#: Largest file kept from a sandbox (the rest is cut, with a note); reward files have their own cap.
MAX_HARVEST_FILE_BYTES = 50 * 1024 * 1024
#: Most files and deepest nesting kept from one sandbox directory (a flood is cut, with a note).
MAX_HARVEST_FILES = 10_000
MAX_HARVEST_DEPTH = 32
_CHUNK = 1024 * 1024


@dataclass
class HarvestReport:
    """What a harvest copied and what it refused, for the trial record."""

    copied: int = 0
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.notes) < 50:
            self.notes.append(text)


@dataclass(frozen=True)
class TrialScratch:
    """The sandbox-visible directories of one trial (see the module docstring)."""

    root: Path

    @property
    def app(self) -> Path:
        return self.root / "app"

    @property
    def logs_agent(self) -> Path:
        return self.root / "logs" / "agent"

    @property
    def logs_verifier(self) -> Path:
        return self.root / "logs" / "verifier"

    @property
    def tests(self) -> Path:
        return self.root / "tests"

    @property
    def solution(self) -> Path:
        return self.root / "solution"

    def create(self, instruction: str) -> None:
        """Fresh ``app/`` and ``logs/agent/`` (with ``instruction.md``), owned by the sandbox user."""
        remove_tree(self.root)
        self.app.mkdir(parents=True)
        self.logs_agent.mkdir(parents=True)
        (self.logs_agent / "instruction.md").write_text(instruction, encoding="utf-8")

    def hand_over(self) -> None:
        """Give the writable directories to the sandbox user (after the host seeded them)."""
        for d in (self.app, self.logs_agent):
            give_to_sandbox(d)

    def copy_in(self, source: Path | None, target: Path) -> Path | None:
        """A private copy of a task directory (tests/, solution/): links copied as links, never followed."""
        if source is None or not source.is_dir():
            return None
        remove_tree(target)
        shutil.copytree(source, target, symlinks=True)
        give_to_sandbox(target)
        return target

    def fresh_verifier_dir(self) -> list[str]:
        """An empty ``logs/verifier/`` for the verifier; returns the names found there before (discarded)."""
        found: list[str] = []
        if self.logs_verifier.exists() or self.logs_verifier.is_symlink():
            if self.logs_verifier.is_dir() and not self.logs_verifier.is_symlink():
                found = sorted(os.listdir(self.logs_verifier))
                shutil.rmtree(self.logs_verifier)
            else:
                found = [self.logs_verifier.name]
                self.logs_verifier.unlink()
        self.logs_verifier.mkdir(parents=True)
        give_to_sandbox(self.logs_verifier)
        return found

    def agent_mounts(self, *, with_solution: bool) -> list[Mount]:
        mounts = [Mount(self.app, "/app"), Mount(self.logs_agent, "/logs/agent")]
        if with_solution and self.solution.is_dir():
            mounts.append(Mount(self.solution, "/solution", writable=False))
        return mounts

    def verifier_mounts(self) -> list[Mount]:
        mounts = [Mount(self.app, "/app"), Mount(self.logs_agent, "/logs/agent", writable=False),
                  Mount(self.logs_verifier, "/logs/verifier")]
        if self.tests.is_dir():
            mounts.append(Mount(self.tests, "/tests", writable=False))
        return mounts


def remove_tree(path: Path) -> None:
    """Remove a scratch tree, also the directories the sandbox made unreadable (``chmod 000``).

    Run as a user, trialbook owns what its sandbox made, so it may give such a directory its
    permissions back; links are never followed (the directory is opened ``O_PATH|O_NOFOLLOW``
    and changed through that descriptor). Called only when no sandbox of the trial runs.
    """

    def retry(func: object, failed: str, exc_info: object) -> None:
        parent = os.path.dirname(failed)
        for d in (parent, failed):  # a 000 directory cannot be listed; a 500 one cannot be emptied
            _owner_rwx(d)
        if os.path.isdir(failed) and not os.path.islink(failed):
            shutil.rmtree(failed)
        elif os.path.lexists(failed):
            os.unlink(failed)

    if os.path.lexists(path):
        if path.is_symlink() or not path.is_dir():
            path.unlink()
        else:
            shutil.rmtree(path, onerror=retry)


def _owner_rwx(path: str) -> None:
    """Add ``rwx`` for the owner to a directory, without following a link in its place."""
    try:
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        mode = os.stat(fd).st_mode
        with contextlib.suppress(OSError):
            os.chmod(f"/proc/self/fd/{fd}", stat.S_IMODE(mode) | stat.S_IRWXU)
    finally:
        os.close(fd)


def harvest(src: Path, dst: Path, *, reserved: frozenset[str] = frozenset(),
            max_file_bytes: int = MAX_HARVEST_FILE_BYTES) -> HarvestReport:
    """Copy what a sandbox left in ``src`` into ``dst`` safely (module docstring); ``reserved``
    top-level names are the host's own files and are never replaced."""
    report = HarvestReport()
    dst.mkdir(parents=True, exist_ok=True)
    _harvest_dir(src, dst, report, reserved, max_file_bytes, depth=0, where="")
    return report


def _harvest_dir(src: Path, dst: Path, report: HarvestReport, reserved: frozenset[str],
                 max_file_bytes: int, *, depth: int, where: str) -> None:
    try:
        entries = sorted(os.scandir(src), key=lambda e: e.name)
    except OSError as exc:
        report.note(f"{where or '.'}: not read ({exc.strerror})")
        return
    for entry in entries:
        rel = f"{where}{entry.name}"
        if depth == 0 and entry.name in reserved:
            report.note(f"{rel}: not kept (the host writes this file)")
            continue
        if report.copied >= MAX_HARVEST_FILES:
            report.note(f"more than {MAX_HARVEST_FILES} files: the rest were not kept")
            return
        try:
            mode = entry.stat(follow_symlinks=False).st_mode
        except OSError:
            continue
        if stat.S_ISLNK(mode):
            report.note(f"{rel}: symbolic link, not followed")
        elif stat.S_ISDIR(mode):
            if depth >= MAX_HARVEST_DEPTH:
                report.note(f"{rel}: nested deeper than {MAX_HARVEST_DEPTH} levels, not kept")
                continue
            (dst / entry.name).mkdir(exist_ok=True)
            _harvest_dir(Path(entry.path), dst / entry.name, report, reserved, max_file_bytes,
                         depth=depth + 1, where=f"{rel}/")
        elif stat.S_ISREG(mode):
            _copy_file(Path(entry.path), dst / entry.name, rel, report, max_file_bytes)
        else:
            report.note(f"{rel}: not a regular file (FIFO, socket or device), not read")


def _copy_file(src: Path, dst: Path, rel: str, report: HarvestReport, max_bytes: int) -> None:
    try:
        fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            report.note(f"{rel}: not read ({exc.strerror})")
        return
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped between the scan and the open
            report.note(f"{rel}: not a regular file, not read")
            return
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(open(dst, "wb"))
            left = max_bytes
            while left > 0:
                chunk = os.read(fd, min(_CHUNK, left))
                if not chunk:
                    break
                out.write(chunk)
                left -= len(chunk)
            if left <= 0 and os.read(fd, 1):
                report.note(f"{rel}: larger than {max_bytes} bytes, cut there")
        report.copied += 1
    finally:
        os.close(fd)
