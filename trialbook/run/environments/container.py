"""The ``docker`` and ``podman`` environments: each trial in its own container of the task's image.

The image is built from the task's ``environment/Dockerfile`` (images.py: content-hashed tag,
built once), or from the Dockerfile a SWE-style instance names, or is the image it names
(``image_name``, pulled unless present). Each trial gets one container, started with ``sleep infinity`` as its only
process; every command is an ``exec`` in it, in the image's ``WORKDIR`` (``/app`` for Harbor
tasks). The engine is driven through its command line (``docker`` or ``podman``), so Podman,
rootless or not, and Docker need nothing more than their binary.

What the container sees, the same paths as ``local``:

* ``/app`` and the rest of the filesystem: the image's, private to the trial;
* ``/logs/agent``, ``/logs/verifier``: bind mounts of the trial's scratch directories, so the
  host reads what they hold with ``O_NOFOLLOW`` exactly as for ``local`` (run/scratch.py);
  ``/logs/verifier`` is emptied before the verifier;
* ``/tests``, ``/solution``: read-only bind mounts that are empty except in their phase (the
  task's ``tests/`` is copied in after every process of the agent phase was killed);
* the network: ``--network none`` unless ``environment.network: true``;
* ``environment.ro_binds`` at the same paths, read-only;
* for an agent that needs more (agent_access.py): the installed program's and the model
  gateway's directories, read-only bind mounts made with the container; the gateway's key in
  the agent phase's commands only, each started behind the bridge on the image's ``python3``;
* SWE instances: ``/app`` is the checkout, made on the host and copied in at start; grading
  runs in a fresh container of the same image (``Environment.fresh``).

Limits go to the engine: ``memory`` (``--memory`` and ``--memory-swap``: RAM + swap), ``pids``
(``--pids-limit``), ``cpus`` (``--cpus``), ``storage`` (``--storage-opt size=``, where the
engine's storage driver supports it). When a phase ends every process it left is killed; a
memory or process limit that killed something is read from the container's cgroup and makes
the phase's reason, as for ``local``. The container is removed when the trial ends, and
containers a killed runner left are removed when its job is resumed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import secrets
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from trialbook.config import EnvironmentConfig
from trialbook.errors import ConfigError, ServiceUnavailableError, TaskError
from trialbook.model.limits import human
from trialbook.run.environments.agent_access import AgentAccess, AgentAccessMixin
from trialbook.run.environments.base import Environment, EnvironmentSpec, ExecResult
from trialbook.run.environments.capture import FileCapture
from trialbook.run.environments.cgroups import process_limit_counts
from trialbook.run.environments.compose import ComposePlan, SidecarsMixin, find_compose, read_plan
from trialbook.run.environments.images import (
    MANAGED_LABEL,
    ImagesMixin,
    build_context,
    first_line,
    rlimit_hint,
    task_image,
)
from trialbook.run.scratch import TrialScratch, harvest, remove_tree

#: Seconds allowed for one engine call other than build and exec (run, rm, inspect, cp).
ENGINE_TIMEOUT_S = 120.0
_JOB_LABEL = "trialbook.job"
#: Engines whose storage driver refused ``--storage-opt size`` (asked once per process).
_NO_STORAGE_OPT: set[str] = set()


class EngineError(Exception):
    """An engine command failed (the message quotes the engine)."""


def job_key(job_scratch: Path) -> str:
    """The label value naming one job of one block (job names repeat across blocks)."""
    return hashlib.sha256(str(job_scratch.resolve()).encode()).hexdigest()[:16]


class ContainerEnvironment(ImagesMixin, AgentAccessMixin, SidecarsMixin, Environment):
    """A trial in a container of its task's image (module docstring)."""

    engine: ClassVar[str]
    builds_images = True
    agent_access = True

    def __init__(self, spec: EnvironmentSpec) -> None:
        super().__init__(spec)
        self.box = TrialScratch(spec.scratch)
        self.container: str | None = None
        self.image: str | None = None
        self.phase = "agent"
        self._pid: int | None = None
        self._counts: dict[str, int] = {}
        self._record: dict[str, Any] | None = None
        self._ran = False
        #: What the agent phase gets besides the task (add_agent_access; agent_access.py).
        self.access = AgentAccess()
        #: The task's compose file, when it has one (compose.py); its network, once made.
        self.compose: ComposePlan | None = None
        self._network: str | None = None

    # -- the engine's command line ---------------------------------------------------------
    @classmethod
    def _argv(cls, config: EnvironmentConfig, *args: str) -> list[str]:
        binary = shutil.which(cls.engine)
        if binary is None:
            raise ConfigError(f"environment.type {cls.engine}: the {cls.engine} command is not installed "
                              f"(see docs/environments.md)")
        return [binary, *config.engine_flags, *args]

    async def _run(self, *args: str, timeout_s: float = ENGINE_TIMEOUT_S, check: bool = True,
                   env: dict[str, str] | None = None, argv: list[str] | None = None) -> tuple[int, str]:
        """Run an engine command to its end; (exit code, output). ``check``: a failure raises.
        ``argv``: another command line (the compose tool's), ``args`` then only name it."""
        argv = argv or self._argv(self.spec.config, *args)
        # The container's monitor (podman's conmon) inherits this directory and writes files there
        # (an ``oom`` marker): the trial's scratch, never the user's working directory.
        cwd = self.box.root if self.box.root.is_dir() else None
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, env=env, start_new_session=True, cwd=cwd)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout=timeout_s)
        except (TimeoutError, asyncio.CancelledError):
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        text = out.decode("utf-8", errors="replace")
        if check and proc.returncode != 0:
            raise EngineError(f"{self.engine} {args[0]} failed (exit {proc.returncode}): "
                              f"{first_line(text)}{rlimit_hint(text)}")
        return proc.returncode or 0, text

    @classmethod
    def _rm_args(cls) -> list[str]:
        """Remove a container and its anonymous volumes now (its ``sleep`` ignores SIGTERM)."""
        return ["rm", "-f", "-v", *(["-t", "0"] if cls.engine == "podman" else [])]

    # -- once per job ----------------------------------------------------------------------
    @classmethod
    def preflight(cls, config: EnvironmentConfig, tasks: Sequence[Any] = ()) -> None:
        """The engine answers, and every task has a Dockerfile (else one line, before any trial)."""
        import subprocess

        argv = cls._argv(config, "info")
        try:
            res = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ServiceUnavailableError(f"environment.type {cls.engine}: {cls.engine} info did not answer ({exc})") from None
        if res.returncode != 0:
            raise ServiceUnavailableError(f"environment.type {cls.engine}: the {cls.engine} engine is not running: "
                                          f"{first_line(res.stderr or res.stdout)}")
        for path in config.ro_binds:
            if ":" in path or "," in path:
                raise ConfigError(f"environment.ro_binds: {path}: a {cls.engine} bind mount cannot name a path "
                                  "with ':' or ','")
        for task in tasks:
            if getattr(task, "image_name", None) or getattr(task, "dockerfile", None):
                continue
            if getattr(task, "grading", "reward") != "reward":
                raise ConfigError(f"environment.type {cls.engine}: SWE-style instance {task.name} names no image: "
                                  "give its row image_name (an image) or dockerfile (a Dockerfile to build)")
            try:
                context = build_context(task.name, task.source_dir)
                source = find_compose(context)
                if source is not None:  # a service that could reach the host: refused before any trial
                    read_plan(source, task.name)
            except TaskError as exc:
                raise ConfigError(exc.message, exc.path or task.source_dir) from None

    @classmethod
    def job_started(cls, config: EnvironmentConfig, job_scratch: Path) -> None:
        """Remove the containers a killed runner of this job left behind."""
        import subprocess

        key = job_key(job_scratch)
        with contextlib.suppress(OSError, subprocess.TimeoutExpired, ConfigError):
            found = subprocess.run(cls._argv(config, "ps", "-a", "-q", "--filter", f"label={_JOB_LABEL}={key}"),
                                   capture_output=True, text=True, timeout=ENGINE_TIMEOUT_S).stdout.split()
            if found:
                subprocess.run(cls._argv(config, *cls._rm_args(), *found), capture_output=True,
                               timeout=ENGINE_TIMEOUT_S)
            networks = subprocess.run(cls._argv(config, "network", "ls", "-q", "--filter", f"label={_JOB_LABEL}={key}"),
                                      capture_output=True, text=True, timeout=ENGINE_TIMEOUT_S).stdout.split()
            if networks:  # a compose task's trial networks
                subprocess.run(cls._argv(config, "network", "rm", "-f", *networks), capture_output=True,
                               timeout=ENGINE_TIMEOUT_S)

    @classmethod
    def prune_images(cls, config: EnvironmentConfig, *, dry_run: bool = False) -> list[str]:
        """Remove every image trialbook built with this engine (label ``trialbook.managed=1``);
        returns their names. Images in use by a running container are left (the engine refuses)."""
        import subprocess

        try:
            res = subprocess.run(cls._argv(config, "images", "--filter", f"label={MANAGED_LABEL}", "--format",
                                           "{{.ID}} {{.Repository}}:{{.Tag}}"),
                                 capture_output=True, text=True, timeout=ENGINE_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ServiceUnavailableError(f"{cls.engine} images did not answer ({exc})") from None
        if res.returncode != 0:
            raise ServiceUnavailableError(f"the {cls.engine} engine is not running: "
                                          f"{first_line(res.stderr or res.stdout)}")
        found = [line.split(" ", 1) for line in res.stdout.splitlines() if line.strip()]
        names = sorted({name for _, name in found})
        if found and not dry_run:
            subprocess.run(cls._argv(config, "rmi", *sorted({image_id for image_id, _ in found})),
                           capture_output=True, timeout=ENGINE_TIMEOUT_S)
        return names

    # -- life cycle ------------------------------------------------------------------------
    async def prepare(self) -> None:
        """The task's image: the one it names (pulled unless present), else built unless it exists (images.py)."""
        if self.spec.image:
            self.image = self.info["image"] = self.spec.image
            self.info["pulled"] = await self._ensure_pulled()
            return
        self.image, context, dockerfile = await asyncio.to_thread(
            task_image, self.spec.task_name, self.spec.task_dir, self.spec.dockerfile)
        self.info["image"] = self.image
        self.info["built"] = await self._ensure_image(self.image, context, dockerfile)
        source = find_compose(context) if self.spec.dockerfile is None else None
        if source is not None:
            self.compose = await asyncio.to_thread(read_plan, source, self.spec.task_name)
            for car in self.compose.sidecars:
                if car.build is not None:
                    await self._ensure_image(*car.build)
            self.info["services"] = [car.name for car in self.compose.sidecars]

    async def start(self) -> None:
        if self.image is None:
            await self.prepare()
        await asyncio.to_thread(self._make_dirs)
        self.container = self._name()
        if self.compose is not None and self.compose.sidecars:
            await self._start_sidecars()
        args = self._run_args()
        code, out = await self._run(*args, check=False)
        if code != 0 and self.limits.storage and "storage" in out.lower() and "size" in out.lower():
            _NO_STORAGE_OPT.add(self.engine)  # this storage driver has no size limit: run without
            await self._run(*self._rm_args(), self.container, check=False)
            code, out = await self._run(*self._run_args(), check=False)
        if code != 0:
            raise EngineError(f"{self.engine} run failed (exit {code}): {first_line(out)}{rlimit_hint(out)}")
        _, pid = await self._run("inspect", "--format", "{{.State.Pid}}", self.container)
        self._pid = int(pid.strip()) if pid.strip().isdigit() else None
        if self.spec.seed_in_image and self.spec.seed is not None:
            await self._seed_app()
        if self.access.wrapper:
            await self._resolve_wrapper()

    async def _seed_app(self) -> None:
        """``/app`` from the task's seed (a SWE checkout), made on the host and copied in: the image
        gives the tools, the seed the code."""
        assert self.container is not None and self.spec.seed is not None
        await asyncio.to_thread(self.spec.seed, self.box.app)
        try:
            await self._run("exec", "-u", "0", self.container, "mkdir", "-p", "/app")
            await self._run("cp", f"{self.box.app}/.", f"{self.container}:/app", timeout_s=600)
        finally:
            await asyncio.to_thread(_empty_in_place, self.box.app)

    def job_labels(self) -> dict[str, str]:
        """The labels of everything a trial makes (``clean --images`` and a resume find them by these)."""
        name, value = MANAGED_LABEL.split("=")
        return {name: value, _JOB_LABEL: job_key(self.spec.scratch.parent)}

    def _make_dirs(self) -> None:
        self.box.create(self.spec.instruction)
        for d in (self.box.logs_verifier, self.box.tests, self.box.solution):
            d.mkdir(parents=True, exist_ok=True)
        for d in (self.box.logs_agent, self.box.logs_verifier):
            d.chmod(0o777)  # the image's user may be anyone
        for d in (self.box.tests, self.box.solution):
            d.chmod(0o755)

    def _name(self) -> str:
        trial = re.sub(r"[^a-zA-Z0-9_.-]+", "-", self.spec.trial_name)[:60]
        return f"trialbook-{job_key(self.spec.scratch.parent)[:8]}-{trial}-{secrets.token_hex(3)}"

    def _run_args(self) -> list[str]:
        assert self.container is not None and self.image is not None
        cfg, limits = self.spec.config, self.limits
        args = ["run", "-d", "--name", self.container, "--label", MANAGED_LABEL,
                "--label", f"{_JOB_LABEL}={job_key(self.spec.scratch.parent)}", "--pull", "never",
                "--entrypoint", "sleep"]
        if self._network:  # the compose services' network; they reach this container as `main`
            args += ["--network", self._network, "--network-alias", "main"]
        else:
            args += ["--network", "bridge" if cfg.network else "none"]
        if limits.memory:
            args += ["--memory", str(limits.memory), "--memory-swap", str(limits.memory)]
        if limits.pids:
            args += ["--pids-limit", str(limits.pids)]
        if limits.cpus:
            args += ["--cpus", f"{limits.cpus:g}"]
        if limits.storage and self.engine not in _NO_STORAGE_OPT:
            args += ["--storage-opt", f"size={limits.storage}"]
        for src, dst, mode in ((self.box.logs_agent, "/logs/agent", "rw"),
                               (self.box.logs_verifier, "/logs/verifier", "rw"),
                               (self.box.tests, "/tests", "ro"), (self.box.solution, "/solution", "ro")):
            args += ["-v", f"{src.resolve()}:{dst}:{mode}"]
        for path in cfg.ro_binds:  # the block's read-only host paths, at the same place
            args += ["-v", f"{path}:{path}:ro"]
        for target, host in self.access.ro_dirs.items():
            args += ["-v", f"{host.resolve()}:{target}:ro"]
        return [*args, *cfg.run_flags, self.image, "infinity"]

    async def stop(self) -> None:
        if self.container is not None:
            with contextlib.suppress(Exception):
                await self._run(*self._rm_args(), self.container, check=False)
            self.container = None
        await self._stop_sidecars()
        with contextlib.suppress(OSError):
            await asyncio.to_thread(remove_tree, self.box.root)

    # -- phases ----------------------------------------------------------------------------
    async def begin_phase(self, phase: str) -> None:
        self.phase = phase
        self._counts = self._cgroup_counts()
        self._ran = False

    async def end_phase(self) -> str | None:
        if self._ran:  # only a command can have left a process behind
            await self._kill_all()
        if self.phase == "agent":  # /solution is the oracle's, for its phase only
            await asyncio.to_thread(_empty_in_place, self.box.solution)
        self._record = {**self.limits.set_values(), "enforced_by": self.engine}
        if self.limits.storage and self.engine in _NO_STORAGE_OPT:
            self._record["warning"] = f"storage not limited: {self.engine}'s storage driver cannot limit a container's size"
        now = self._cgroup_counts()
        if now.get("oom_kill", 0) > self._counts.get("oom_kill", 0) and self.limits.memory:
            return f"memory limit {human(self.limits.memory)} exceeded"
        if now.get("pids_max", 0) > self._counts.get("pids_max", 0) and self.limits.pids:
            return f"process limit {self.limits.pids} reached"
        return None

    def limits_record(self) -> dict[str, Any] | None:
        return self._record

    def _cgroup_counts(self) -> dict[str, int]:
        """The container's OOM kills and refused forks so far, read from its cgroup on this host."""
        return process_limit_counts(self._pid) if self._pid is not None else {}

    async def _kill_all(self) -> None:
        """Kill every process of the container but its ``sleep`` (commands and what they left)."""
        if self.container is None:
            return
        code, _ = await self._run("exec", "-u", "0", self.container, "sh", "-c", "kill -9 -1", check=False)
        if code in (126, 127):  # no shell in the image: restart the container (its files stay)
            await self._run("restart", "-t", "0", self.container, check=False)
            _, pid = await self._run("inspect", "--format", "{{.State.Pid}}", self.container, check=False)
            self._pid = int(pid.strip()) if pid.strip().isdigit() else self._pid

    # -- commands and files ----------------------------------------------------------------
    async def exec(self, command: list[str], *, timeout_s: float, stdout_path: Path, stderr_path: Path | None = None,
                   stdin_data: bytes | None = None, workdir: str | None = None,
                   env: dict[str, str] | None = None) -> ExecResult:
        """``engine exec``; variables travel in the engine client's environment (``-e NAME``), never
        on a command line; on timeout or cancellation every process of the container is killed."""
        assert self.container is not None, "exec before start"
        self._ran = True
        agent = self.phase != "verifier"
        variables = {**(self.compose.main_env if self.compose else {}), **self.spec.env,
                     **(self.access.env if agent else {}), **(env or {})}
        if agent and self.access.wrapper:
            command = [*self.access.wrapper, *command]
        args = ["exec", *(["-i"] if stdin_data is not None else []), *(["-w", workdir] if workdir else [])]
        for name in variables:
            args += ["-e", name]
        argv = self._argv(self.spec.config, *args, self.container, *command)
        client_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root"),
                      **{k: v for k, v in os.environ.items() if k.startswith(("XDG_", "DOCKER_", "CONTAINER"))},
                      **variables}
        stdout_path.parent.mkdir(parents=True, exist_ok=True)
        captures = [FileCapture(p, self.limits.output, self.notes) for p in (stdout_path, stderr_path) if p]
        start = time.monotonic()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE if stdin_data is not None else asyncio.subprocess.DEVNULL,
                stdout=captures[0].write_fd, stderr=captures[1].write_fd if stderr_path else asyncio.subprocess.STDOUT,
                env=client_env, start_new_session=True, cwd=self.box.root)
        finally:
            for capture in captures:
                capture.child_started()
        try:
            try:
                if stdin_data is not None:
                    await asyncio.wait_for(proc.communicate(stdin_data), timeout=timeout_s)
                else:
                    await asyncio.wait_for(proc.wait(), timeout=timeout_s)
            except TimeoutError:
                await self._stop_client(proc)
                return ExecResult(None, True, time.monotonic() - start)
            except asyncio.CancelledError:
                await asyncio.shield(self._stop_client(proc))
                raise
            return ExecResult(proc.returncode, False, time.monotonic() - start)
        finally:
            for capture in captures:
                await capture.finished()

    async def _stop_client(self, proc: asyncio.subprocess.Process) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.wait(), timeout=10)
        await self._kill_all()

    async def upload(self, source: Path, target: str) -> None:
        if target in ("/tests", "/solution"):
            dest = self.box.tests if target == "/tests" else self.box.solution
            await asyncio.to_thread(_fill_in_place, source, dest)
            return
        assert self.container is not None, "upload before start"
        await self._run("cp", str(source), f"{self.container}:{target}")

    async def download(self, source: str, target: Path, *, reserved: frozenset[str] = frozenset()) -> list[str]:
        if source in ("/logs/agent", "/logs/verifier"):
            src = self.box.logs_agent if source == "/logs/agent" else self.box.logs_verifier
            return (await asyncio.to_thread(harvest, src, target, reserved=reserved)).notes
        assert self.container is not None, "download before start"
        stage = self.box.root / f".download-{secrets.token_hex(4)}"
        stage.mkdir(parents=True)
        try:
            await self._run("cp", f"{self.container}:{source}", str(stage / "out"))
            got = stage / "out"
            if got.is_dir() and not got.is_symlink():
                return (await asyncio.to_thread(harvest, got, target, reserved=reserved)).notes
            return (await asyncio.to_thread(harvest, stage, target, reserved=reserved)).notes
        finally:
            await asyncio.to_thread(remove_tree, stage)

    async def reset_dir(self, path: str) -> list[str]:
        if path != "/logs/verifier":
            raise ValueError(f"the {self.engine} environment resets /logs/verifier only, not {path}")
        return await asyncio.to_thread(_empty_in_place, self.box.logs_verifier)

    async def reward_dir(self, path: str, host_dir: Path) -> Path:
        if path == "/logs/verifier":
            return self.box.logs_verifier
        return await super().reward_dir(path, host_dir)


def _empty_in_place(directory: Path) -> list[str]:
    """Remove what ``directory`` holds, keeping the directory itself (a bind mount's source);
    links are removed, never followed. Returns the names found."""
    names = sorted(os.listdir(directory))
    for name in names:
        remove_tree(directory / name)
    return names


def _fill_in_place(source: Path, directory: Path) -> None:
    """``directory`` holds a copy of ``source`` (links copied as links), and nothing else."""
    _empty_in_place(directory)
    shutil.copytree(source, directory, symlinks=True, dirs_exist_ok=True)
    directory.chmod(0o755)


class PodmanEnvironment(ContainerEnvironment):
    """``environment.type: podman``."""

    type = "podman"
    engine = "podman"


class DockerEnvironment(ContainerEnvironment):
    """``environment.type: docker`` (the same code; the ``docker`` command line)."""

    type = "docker"
    engine = "docker"
