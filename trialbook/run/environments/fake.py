"""``FakeEnvironment``: an in-process :class:`Environment` for tests of the runner.

Nothing is isolated and no process starts: the environment's filesystem is a host directory
(``/app`` is ``<scratch>/root/app``), and each command is handed to :attr:`FakeEnvironment.program`,
a Python function the test sets, which reads and writes files through :meth:`path` and returns
an exit code (and may print, or sleep to test timeouts). Every call is logged in
:attr:`FakeEnvironment.calls` with the phase and the directories it could see, so a test can
check what the runner did in which order without bubblewrap or a container engine.

Use it with ``environment.import_path: trialbook.run.environments.fake:FakeEnvironment``.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

from trialbook.run.environments.base import Environment, ExecResult
from trialbook.run.scratch import harvest, remove_tree

#: ``program(env, command, stdout)`` -> exit code (or an awaitable of one); ``stdout`` is a text file.
Program = Callable[["FakeEnvironment", list[str], Any], "int | Awaitable[int]"]


def _default_program(env: FakeEnvironment, command: list[str], out: Any) -> int:
    """Does nothing and succeeds (a verifier that writes no reward, an agent that changes nothing)."""
    return 0


class FakeEnvironment(Environment):
    """The in-process fake (module docstring)."""

    type = "fake"
    #: What every command does (set by the test).
    program: ClassVar[Program] = _default_program
    #: One entry per event: ``(trial, event, detail)``; events are start, phase, exec, upload, stop.
    calls: ClassVar[list[tuple[str, str, Any]]] = []

    def __init__(self, spec: Any) -> None:
        super().__init__(spec)
        self.root = spec.scratch / "root"
        self.phase = "setup"
        self.env_vars: dict[str, str] = {}

    def path(self, inside: str) -> Path:
        """The host path of a path inside the environment."""
        return self.root / inside.lstrip("/")

    def _log(self, event: str, detail: Any) -> None:
        FakeEnvironment.calls.append((self.spec.trial_name, event, detail))

    def _visible(self) -> list[str]:
        return sorted(p for p in ("/app", "/logs/agent", "/logs/verifier", "/tests", "/solution")
                      if self.path(p).is_dir())

    async def start(self) -> None:
        if self.root.exists():
            remove_tree(self.root)
        self.path("/app").mkdir(parents=True)
        self.path("/logs/agent").mkdir(parents=True)
        self.path("/logs/agent/instruction.md").write_text(self.spec.instruction, encoding="utf-8")
        if self.spec.seed is not None:
            self.spec.seed(self.path("/app"))
        self._log("start", self._visible())

    async def stop(self) -> None:
        self._log("stop", None)
        if self.spec.scratch.exists():
            remove_tree(self.spec.scratch)

    async def begin_phase(self, phase: str) -> None:
        self.phase = phase
        if phase == "verifier" and self.path("/solution").exists():  # the oracle's, for its phase only
            remove_tree(self.path("/solution"))
        self._log("phase", (phase, self._visible()))

    async def exec(self, command: list[str], *, timeout_s: float, stdout_path: Path, stderr_path: Path | None = None,
                   stdin_data: bytes | None = None, workdir: str | None = None,
                   env: dict[str, str] | None = None) -> ExecResult:
        self.env_vars = {**self.spec.env, **(env or {})}
        self._log("exec", (self.phase, list(command), self._visible()))
        stdout_path.parent.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        with open(stdout_path, "a", encoding="utf-8") as out:
            result = type(self).program(self, command, out)
            if inspect.isawaitable(result):
                try:
                    result = await asyncio.wait_for(result, timeout=timeout_s)
                except TimeoutError:
                    return ExecResult(None, True, time.monotonic() - start)
        return ExecResult(int(result), False, time.monotonic() - start)

    async def upload(self, source: Path, target: str) -> None:
        self._log("upload", (self.phase, target))
        dest = self.path(target)
        if source.is_dir():
            shutil.copytree(source, dest, symlinks=True, dirs_exist_ok=True)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest)

    async def download(self, source: str, target: Path, *, reserved: frozenset[str] = frozenset()) -> list[str]:
        return harvest(self.path(source), target, reserved=reserved).notes

    async def reset_dir(self, path: str) -> list[str]:
        d = self.path(path)
        found = sorted(os.listdir(d)) if d.is_dir() else []
        if d.exists():
            remove_tree(d)
        d.mkdir(parents=True)
        return found

    async def reward_dir(self, path: str, host_dir: Path) -> Path:
        return self.path(path)
