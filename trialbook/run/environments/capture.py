"""Command output kept up to a cap: the sandbox writes into a pipe, a host thread copies it.

A sandboxed command could print without end (``yes``, a test in a loop); writing its output
straight to a host file would fill the disk before the trial ends. Instead the host holds
the file, copies the pipe into it until the file reaches the cap, then reads and drops the
rest, counting it, and ends the file with one note line saying how much was dropped. The
runner never holds more than one chunk in memory, and no host read touches a sandbox path.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from pathlib import Path
from typing import IO

from trialbook.model.limits import human

_CHUNK = 256 * 1024


def _pump(read_fd: int, write: object, cap: int | None, kept_before: int) -> tuple[int, int]:
    """Copy ``read_fd`` to ``write(bytes)`` until ``cap`` bytes are kept in all; (kept, dropped)."""
    kept, dropped = kept_before, 0
    while True:
        try:
            data = os.read(read_fd, _CHUNK)
        except InterruptedError:
            continue
        if not data:
            return kept, dropped
        room = len(data) if cap is None else max(0, cap - kept)
        if room:
            write(data[:room])  # type: ignore[operator]
            kept += min(room, len(data))
        dropped += len(data) - min(room, len(data))


class FileCapture:
    """One output file of one command (created in a running event loop): ``write_fd`` is the
    command's end of the pipe, to close with :meth:`child_started` once the command runs."""

    def __init__(self, path: Path, cap: int | None, notes: list[str]) -> None:
        self.path, self.cap, self.notes = path, cap, notes
        self._loop = asyncio.get_running_loop()
        self._done: asyncio.Future[None] = self._loop.create_future()
        self.file = open(path, "ab")  # noqa: SIM115 - closed by the copy thread
        read_fd, self.write_fd = os.pipe()
        threading.Thread(target=self._copy, args=(read_fd,), daemon=True,
                         name=f"trialbook-capture-{path.name}").start()

    def _copy(self, read_fd: int) -> None:
        try:
            _, dropped = _pump(read_fd, self.file.write, self.cap, os.fstat(self.file.fileno()).st_size)
            if dropped:
                self.file.write(f"\n[trialbook: output limit {human(self.cap or 0)} reached; "
                                f"{dropped} more bytes dropped]\n".encode())
                self.notes.append(f"{self.path.name}: output limit {human(self.cap or 0)} reached, "
                                  f"{dropped} bytes dropped")
        finally:
            os.close(read_fd)
            self.file.close()
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
                self._loop.call_soon_threadsafe(_resolve, self._done)

    def child_started(self) -> None:
        """Close our copy of the command's end (the copy ends when the command's copies close)."""
        with contextlib.suppress(OSError):
            os.close(self.write_fd)

    async def finished(self, timeout_s: float = 10.0) -> None:
        """Wait for the copy to end (the pipe closes when the sandbox's last process is gone)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._done), timeout=timeout_s)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class PipeReader:
    """Reads a pipe to its end in a thread, keeping ``cap`` bytes, then closes it (for code that is
    not async)."""

    def __init__(self, pipe: IO[bytes], cap: int | None) -> None:
        self._kept = bytearray()
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, args=(pipe, cap), daemon=True,
                                        name="trialbook-pipe-reader")
        self._thread.start()

    def _run(self, pipe: IO[bytes], cap: int | None) -> None:
        try:
            _, self.dropped = _pump(pipe.fileno(), self._kept.extend, cap, 0)
        finally:
            pipe.close()  # here, once read to the end: never under a read in progress

    def result(self, timeout_s: float = 10.0) -> tuple[bytes, int]:
        """What was kept and how many bytes were dropped, once the pipe closed (or after ``timeout_s``)."""
        self._thread.join(timeout=timeout_s)
        return bytes(self._kept), self.dropped
