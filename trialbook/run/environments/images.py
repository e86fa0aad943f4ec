"""Task images for the ``docker``/``podman`` environments: tagged by content, built once, pruned.

A task's image is built from its ``environment/`` directory (the build context, with its
``Dockerfile``). The tag is ``localhost/trialbook/<task>:<hash>``, the hash covering every file
of the context (path, executable bit, bytes; links by their target), so an unchanged task
reuses its image and any change builds a new one. Builds of one tag are serialised within the
process (an asyncio lock) and across runners (an ``flock`` on a file under the user's cache
directory), so two concurrent trials, or two jobs, build an image once. Every image carries
the label ``trialbook.managed=1``, which ``trialbook clean --images`` prunes by.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import stat
from collections.abc import AsyncIterator
from pathlib import Path

from filelock import FileLock

from trialbook.errors import TaskError

MANAGED_LABEL = "trialbook.managed=1"
_locks: dict[str, asyncio.Lock] = {}


class ImageBuildError(Exception):
    """A task's image could not be built (the trial is an ``infra_error``)."""


def context_hash(context: Path) -> str:
    """SHA-256 over the build context's files, in sorted order (see the module docstring)."""
    h = hashlib.sha256()
    for p in sorted(context.rglob("*")):
        rel = str(p.relative_to(context)).encode()
        st = p.lstat()
        if stat.S_ISLNK(st.st_mode):
            h.update(b"L\0" + rel + b"\0" + os.readlink(p).encode() + b"\0")
        elif stat.S_ISREG(st.st_mode):
            h.update(b"F\0" + rel + b"\0" + (b"x" if st.st_mode & 0o111 else b"-") + b"\0")
            with open(p, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            h.update(b"\0")
        elif stat.S_ISDIR(st.st_mode):
            h.update(b"D\0" + rel + b"\0")
    return h.hexdigest()


def image_tag(task_name: str, context: Path) -> str:
    """``localhost/trialbook/<task>:<first 16 hex of the context hash>`` (the name made tag-safe)."""
    name = re.sub(r"[^a-z0-9._-]+", "-", task_name.lower()).strip("-._") or "task"
    return f"localhost/trialbook/{name[:100]}:{context_hash(context)[:16]}"


def build_context(task_name: str, task_dir: Path | None) -> Path:
    """The task's ``environment/`` directory, which must hold a ``Dockerfile``."""
    context = task_dir / "environment" if task_dir is not None else None
    if context is None or not (context / "Dockerfile").is_file():
        raise TaskError(f"task {task_name}: no environment/Dockerfile to build its image from "
                        "(docker/podman environments need one)", task_dir)
    return context


def _lock_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "trialbook" / "image-locks"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


@contextlib.asynccontextmanager
async def build_lock(tag: str) -> AsyncIterator[None]:
    """Held while one tag is checked and built: by one trial of this process, and one runner."""
    lock = _locks.setdefault(tag, asyncio.Lock())
    async with lock:
        path = _lock_dir() / (hashlib.sha256(tag.encode()).hexdigest()[:32] + ".lock")
        across_runners = FileLock(str(path), thread_local=False)  # taken in a worker thread, released here
        await asyncio.to_thread(across_runners.acquire)
        try:
            yield
        finally:
            across_runners.release()
