"""Task images for the ``docker``/``podman`` environments: tagged by content, built once, pruned.

A task's image is built from its ``environment/`` directory (the build context, with its
``Dockerfile``). The tag is ``localhost/trialbook/<task>:<hash>``, the hash covering every file
of the context (path, executable bit, bytes; links by their target), so an unchanged task
reuses its image and any change builds a new one. Builds of one tag are serialised within the
process (an asyncio lock) and across runners (an ``flock`` on a file under the user's cache
directory), so two concurrent trials, or two jobs, build an image once. Every image carries
the label ``trialbook.managed=1``, which ``trialbook clean --images`` prunes by. An image a
task names (a SWE instance's ``image_name``) is pulled, under the same lock, unless present.
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
from typing import TYPE_CHECKING

from filelock import FileLock

from trialbook.errors import TaskError
from trialbook.run.environments.base import EnvironmentSpec

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


def task_image(task_name: str, task_dir: Path | None, dockerfile: Path | None) -> tuple[str, Path, Path]:
    """(tag, build context, Dockerfile) of a task's image: its own ``dockerfile`` when it names one
    (tagged by its context and file name, so instances sharing one build it once), else the task's
    ``environment/Dockerfile``."""
    if dockerfile is not None:
        context = dockerfile.parent
        return image_tag(f"{context.name}-{dockerfile.name}", context), context, dockerfile
    context = build_context(task_name, task_dir)
    return image_tag(task_name, context), context, context / "Dockerfile"


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


def first_line(text: str) -> str:
    """The line of an engine's output that says what went wrong (its last error line, else its last line)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "rror" in ln]
    return (errors or lines or ["no output"])[-1][:400]


def rlimit_hint(text: str) -> str:
    """What to set when the engine cannot apply its default limits on this machine (else '')."""
    if "rlimit" in text.lower() or "cgroups in hybrid mode" in text:
        return (" (this engine cannot set the default limits here: try environment.engine_flags "
                "['--runtime', 'runc'] and run_flags ['--ulimit', 'nofile=1024:1024', '--ulimit', "
                "'nproc=1024:1024']; see docs/environments.md)")
    return ""


class ImagesMixin:
    """Getting a trial's images with the container environment's engine (container.py): pulled
    when the task names one, else built once per content under :func:`build_lock`."""

    image: str | None
    spec: EnvironmentSpec

    if TYPE_CHECKING:  # provided by ContainerEnvironment
        async def _run(self, *args: str, timeout_s: float = ..., check: bool = ...,
                       env: dict[str, str] | None = ..., argv: list[str] | None = ...) -> tuple[int, str]: ...

    async def _ensure_pulled(self) -> bool:
        """Pull the image the task names unless it is here; True when this trial pulled it."""
        assert self.image is not None
        async with build_lock(self.image):
            code, _ = await self._run("image", "inspect", self.image, check=False)
            if code == 0:
                return False
            try:
                code, out = await self._run("pull", self.image, timeout_s=self.spec.config.build_timeout, check=False)
            except TimeoutError:
                raise ImageBuildError(f"pulling the image {self.image} of task {self.spec.task_name} timed out "
                                      f"after {self.spec.config.build_timeout:g}s") from None
            if code != 0:
                raise ImageBuildError(f"the image {self.image} of task {self.spec.task_name} is not here and "
                                      f"could not be pulled: {first_line(out)}")
            return True

    async def _ensure_image(self, tag: str, context: Path, dockerfile: Path) -> bool:
        """Build an image of the task unless it exists; True when this trial built it."""
        async with build_lock(tag):
            code, _ = await self._run("image", "inspect", tag, check=False)
            if code == 0:
                return False
            args = ["build", "-t", tag, "--label", MANAGED_LABEL, "--label",
                    f"trialbook.task={self.spec.task_name}", "-f", str(dockerfile),
                    *self.spec.config.run_flags, str(context)]
            try:
                code, out = await self._run(*args, timeout_s=self.spec.config.build_timeout, check=False)
            except TimeoutError:
                raise ImageBuildError(f"building the image of task {self.spec.task_name} timed out after "
                                      f"{self.spec.config.build_timeout:g}s") from None
            if code != 0:
                raise ImageBuildError(f"building the image of task {self.spec.task_name} failed "
                                      f"(exit {code}): {first_line(out)}{rlimit_hint(out)}")
            return True
