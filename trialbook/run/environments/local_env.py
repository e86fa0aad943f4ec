"""``LocalEnvironment``: the :class:`Environment` of ``environment.type: local`` (the default).

Each command runs in a bubblewrap :class:`~trialbook.run.environments.local.Sandbox` over the
trial's scratch tree (run/scratch.py): ``/app`` is a copy of the task's ``environment/`` (its
Dockerfile is not built), ``/logs/agent`` and ``/logs/verifier`` are per-trial directories,
``/tests`` and ``/solution`` private read-only copies mounted only in their phase. Each phase
has its own :class:`~trialbook.run.environments.guard.PhaseGuard` (cgroups, rlimits, a
watchdog) and its own PID namespace per command, so nothing outlives its phase. What the
sandbox leaves is brought back with ``O_NOFOLLOW`` (run/scratch.py's harvest).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import os
import shutil
from pathlib import Path
from typing import Any

from trialbook.model.limits import ENFORCED
from trialbook.run.environments.base import Environment, EnvironmentSpec, ExecResult
from trialbook.run.environments.guard import PhaseGuard, warn_once
from trialbook.run.environments.local import Mount, Sandbox, bwrap_sizes_tmpfs, give_to_sandbox
from trialbook.run.scratch import TrialScratch, harvest, remove_tree

#: Where a file on its way in or out of a writable place is staged, inside the sandbox.
_STAGE = "/tmp/.trialbook-stage"
_WRITABLE_ROOTS = ("/app", "/logs/agent")
#: The host's own directories in the sandbox (read-only binds): nothing can be mounted inside them.
_HOST_DIRS = ("/usr", "/etc", "/opt", "/bin", "/lib", "/lib64", "/sbin", "/proc", "/dev")


class LocalEnvironment(Environment):
    """Commands in a bubblewrap sandbox on the host's read-only system (module docstring)."""

    type = "local"
    agent_access = True

    def __init__(self, spec: EnvironmentSpec) -> None:
        super().__init__(spec)
        self.box = TrialScratch(spec.scratch)
        self.phase = "agent"
        self.guard: PhaseGuard | None = None
        self._record: dict[str, Any] | None = None
        #: Read-only private copies mounted for the rest of the trial (``upload`` elsewhere than /app).
        self._extra: list[Mount] = []
        self._seq = itertools.count()
        #: What the agent phase gets besides the task (add_agent_access).
        self._agent_mounts: list[Mount] = []
        self._agent_env: dict[str, str] = {}
        self._agent_wrapper: list[str] = []
        self.sandbox = self._sandbox()

    # -- the sandbox of the current phase ---------------------------------------------------
    def _mounts(self) -> list[Mount]:
        box = self.box
        if self.phase == "verifier":
            mounts = [Mount(box.app, "/app"), Mount(box.logs_agent, "/logs/agent", writable=False),
                      Mount(box.logs_verifier, "/logs/verifier")]
            if box.tests.is_dir():
                mounts.append(Mount(box.tests, "/tests", writable=False))
        else:
            mounts = [Mount(box.app, "/app"), Mount(box.logs_agent, "/logs/agent")]
            if box.solution.is_dir():
                mounts.append(Mount(box.solution, "/solution", writable=False))
            mounts += self._agent_mounts
        return mounts + self._extra

    def _sandbox(self, guard: PhaseGuard | None = None) -> Sandbox:
        cfg = self.spec.config
        limits = self.limits
        agent = self.phase != "verifier"
        return Sandbox(mounts=self._mounts(), network=cfg.network,
                       env={**self.spec.env, **(self._agent_env if agent else {})},
                       ro_binds=list(cfg.ro_binds), limits=limits, guard=guard,
                       tmp_dir=self._tmp_dir() if limits.tmp else None, notes=self.notes,
                       wrapper=list(self._agent_wrapper) if agent else [])

    def add_agent_access(self, *, env: dict[str, str] | None = None, ro_dirs: dict[str, Path] | None = None,
                         wrapper: list[str] | None = None) -> None:
        self._agent_env.update(env or {})
        targets = set(ro_dirs or {})
        self._agent_mounts = [m for m in self._agent_mounts if m.target not in targets]
        self._agent_mounts += [Mount(host, target, writable=False) for target, host in (ro_dirs or {}).items()]
        if wrapper is not None:
            self._agent_wrapper = list(wrapper)
        self.sandbox = self._sandbox(self.guard)

    def _tmp_dir(self) -> Path | None:
        """The trial's own /tmp when bubblewrap cannot size a tmpfs (made on first use, in the watched scratch)."""
        if bwrap_sizes_tmpfs() or not self.box.app.is_dir():
            return None
        tmp = self.box.root / "tmp"
        if not tmp.is_dir():
            tmp.mkdir(mode=0o1777)
            tmp.chmod(0o1777)  # not narrowed by the umask
            give_to_sandbox(tmp)
        return tmp

    # -- life cycle -------------------------------------------------------------------------
    async def start(self) -> None:
        await asyncio.to_thread(self._start)

    def _start(self) -> None:
        self.box.create(self.spec.instruction)
        if self.spec.seed is not None:
            self.spec.seed(self.box.app)
        self.box.hand_over()
        self.sandbox = self._sandbox(self.guard)

    async def stop(self) -> None:
        with contextlib.suppress(OSError):  # a leftover is removed by the next attempt's start()
            await asyncio.to_thread(remove_tree, self.box.root)

    async def fresh(self, suffix: str = "-eval") -> Environment:
        """A second ``/app`` in the task's initial state, inside this trial's scratch (so the phase's
        storage watchdog counts it) and under the running phase's limits."""
        other = LocalEnvironment(dataclasses.replace(self.spec, scratch=self.box.root / suffix.strip("-")))
        other.notes = self.notes
        other.phase, other.guard = self.phase, self.guard
        await other.start()
        await asyncio.to_thread(_made_for_sandbox, other.box.logs_verifier)
        other.sandbox = other._sandbox(other.guard)
        return other

    async def begin_phase(self, phase: str) -> None:
        self.phase = phase
        if any(getattr(self.limits, name) is not None for name in ENFORCED):
            self.guard = PhaseGuard(self.limits, watch=self.box.root, in_user_namespace=os.geteuid() != 0)
            self.guard.on_trip = self._tripped
        self.sandbox = self._sandbox(self.guard)

    def _tripped(self) -> None:
        if self.on_limit is not None:
            self.on_limit()

    async def end_phase(self) -> str | None:
        guard, self.guard = self.guard, None
        if guard is None:
            return None
        if guard.idle:
            guard.close()
        else:
            await asyncio.to_thread(guard.close)
        warn_once(self.spec.job_name, guard)
        self._record = guard.record()
        return guard.exceeded()

    def limits_record(self) -> dict[str, Any] | None:
        return self._record

    # -- commands and files ------------------------------------------------------------------
    async def exec(self, command: list[str], *, timeout_s: float, stdout_path: Path, stderr_path: Path | None = None,
                   stdin_data: bytes | None = None, workdir: str | None = None,
                   env: dict[str, str] | None = None) -> ExecResult:
        box = self.sandbox
        if workdir or env:
            box = dataclasses.replace(box, env={**box.env, **(env or {})}, workdir=workdir or box.workdir)
        return await box.exec(command, timeout_s=timeout_s, stdout_path=stdout_path, stderr_path=stderr_path,
                              stdin_data=stdin_data)

    async def upload(self, source: Path, target: str) -> None:
        """``/tests``, ``/solution``: private copies for their phase; under ``/app`` or ``/logs/agent``:
        copied by the sandbox itself (the host never writes where the sandbox can plant a link);
        elsewhere: a private read-only copy mounted there for the rest of the trial."""
        if target in ("/tests", "/solution"):
            await asyncio.to_thread(self.box.copy_in, source, self.box.tests if target == "/tests" else self.box.solution)
        elif any(target == r or target.startswith(r + "/") for r in _WRITABLE_ROOTS):
            stage = await asyncio.to_thread(self._private_copy, source)
            mount = Mount(stage, _STAGE, writable=False)
            out = self.box.root / f".upload-{next(self._seq)}.txt"
            res = await self.sandbox.exec(["cp", "-R", "--", f"{_STAGE}/{source.name}", target], timeout_s=600,
                                          stdout_path=out, extra_mounts=[mount])
            message = out.read_text(errors="replace").strip() if out.exists() else ""
            await asyncio.to_thread(remove_tree, stage)
            out.unlink(missing_ok=True)
            if res.exit_code != 0:
                raise OSError(f"upload to {target} failed: {message or res.exit_code}")
        elif any(target == d or target.startswith(d + "/") for d in _HOST_DIRS):
            raise ValueError(f"the local environment cannot upload to {target}: the host's system "
                             "directories are mounted read-only")
        else:
            stage = await asyncio.to_thread(self._private_copy, source)
            self._extra = [m for m in self._extra if m.target != target]
            self._extra.append(Mount(stage / source.name, target, writable=False))
            self.sandbox = self._sandbox(self.guard)

    def _private_copy(self, source: Path) -> Path:
        stage = self.box.root / f".stage-{next(self._seq)}"
        stage.mkdir(parents=True)
        if source.is_dir():
            shutil.copytree(source, stage / source.name, symlinks=True)
        else:
            shutil.copy2(source, stage / source.name, follow_symlinks=False)
        give_to_sandbox(stage)
        return stage

    async def download(self, source: str, target: Path, *, reserved: frozenset[str] = frozenset()) -> list[str]:
        if source in ("/logs/agent", "/logs/verifier"):
            src = self.box.logs_agent if source == "/logs/agent" else self.box.logs_verifier
            report = await asyncio.to_thread(harvest, src, target, reserved=reserved)
            return report.notes
        # elsewhere the sandbox copies it out into a new directory; the host harvests that
        stage = self.box.root / f".stage-{next(self._seq)}"
        await asyncio.to_thread(_made_for_sandbox, stage)
        out = self.box.root / f".download-{next(self._seq)}.txt"
        script = 'if [ -d "$1" ]; then cp -R -- "$1"/. "$2"/; else cp -- "$1" "$2"/; fi'
        res = await self.sandbox.exec(["bash", "-c", script, "_", source, _STAGE], timeout_s=600, stdout_path=out,
                                      extra_mounts=[Mount(stage, _STAGE)])
        message = out.read_text(errors="replace").strip() if out.exists() else ""
        out.unlink(missing_ok=True)
        try:
            if res.exit_code != 0:
                raise OSError(f"download of {source} failed: {message or res.exit_code}")
            report = await asyncio.to_thread(harvest, stage, target, reserved=reserved)
            return report.notes
        finally:
            await asyncio.to_thread(remove_tree, stage)

    async def reset_dir(self, path: str) -> list[str]:
        if path != "/logs/verifier":
            raise ValueError(f"the local environment resets /logs/verifier only, not {path}")
        return await asyncio.to_thread(self.box.fresh_verifier_dir)

    async def reward_dir(self, path: str, host_dir: Path) -> Path:
        """``/logs/verifier`` is read where the sandbox wrote it (reward files are read with ``O_NOFOLLOW``)."""
        if path == "/logs/verifier":
            return self.box.logs_verifier
        return await super().reward_dir(path, host_dir)


def _made_for_sandbox(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    give_to_sandbox(path)
