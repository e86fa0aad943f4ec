"""The ``Environment`` interface: where one trial's commands run, whatever isolates them.

Every phase of a trial goes through it: the agent (``ctx.exec``), mini-swe-agent's commands,
the reward verifier and SWE grading. An environment offers the same paths whatever it is
(``/app`` the workspace, ``/logs/agent``, ``/logs/verifier``, ``/tests`` in the verifier
phase, ``/solution`` for the oracle) and the same life cycle::

    env = cls(spec); env.add_agent_access(...)               # agents that need it
    await env.prepare(); await env.start()
    await env.upload(solution_dir, "/solution")        # oracle only
    await env.begin_phase("agent"); ... env.exec(...) ...; reason = await env.end_phase()
    await env.download("/logs/agent", trial/agent)
    await env.reset_dir("/logs/verifier"); await env.upload(tests_dir, "/tests")
    await env.begin_phase("verifier"); ...; await env.end_phase()
    await env.stop()

Implementations are chosen by ``environment.type`` (registry.py: ``local``, ``docker``,
``podman``, ``environment.import_path``, the entry-point group ``trialbook.environments``);
docs/environments.md shows how to write one.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from trialbook.config import EnvironmentConfig
from trialbook.model.limits import Limits


@dataclass
class ExecResult:
    """How a command ended."""

    exit_code: int | None
    timed_out: bool
    duration_s: float
    cancelled: bool = False


@dataclass
class EnvironmentSpec:
    """What one trial's environment is made from (the runner fills it; environments only read it)."""

    job_name: str
    trial_name: str
    task_name: str
    #: The task's directory (a Harbor task's ``environment/`` is under it), if it has one.
    task_dir: Path | None
    instruction: str
    config: EnvironmentConfig
    #: This trial's private host directory; the environment may keep anything under it.
    scratch: Path
    limits: Limits = field(default_factory=Limits)
    #: Variables every command gets.
    env: dict[str, str] = field(default_factory=dict)
    #: Fills a host directory with the task's initial ``/app`` (environments without an image use it).
    seed: Callable[[Path], None] | None = None
    #: Image environments: an existing image the task names (SWE ``image_name``); else one is built.
    image: str | None = None
    #: Image environments: the Dockerfile to build, its directory the context (default: the task's
    #: ``environment/Dockerfile``).
    dockerfile: Path | None = None
    #: Image environments seed ``/app`` with ``seed`` too (SWE checkouts), not only the image.
    seed_in_image: bool = False

    def fresh_copy(self, suffix: str) -> EnvironmentSpec:
        """The same spec in a sibling scratch directory (a second environment of the same trial)."""
        return dataclasses.replace(self, scratch=self.scratch.with_name(f"{self.scratch.name}{suffix}"))


class Environment(ABC):
    """One trial's place to run commands (module docstring: paths and life cycle)."""

    #: The name ``environment.type`` uses.
    type: ClassVar[str]
    #: Whether the task's ``environment/Dockerfile`` defines what runs (else the host's system does).
    builds_images: ClassVar[bool] = False
    #: Whether :meth:`add_agent_access` works (installed agents and the model gateway need it).
    agent_access: ClassVar[bool] = False

    def __init__(self, spec: EnvironmentSpec) -> None:
        self.spec = spec
        #: Notes for the trial record (output cut at its limit, files not kept), phase by phase.
        self.notes: list[str] = []
        #: Called when a limit stops the running phase (the runner cancels the agent).
        self.on_limit: Callable[[], None] | None = None
        #: What the trial record keeps of this environment (``extra.environment``) beyond its type,
        #: e.g. the image and whether this trial built it.
        self.info: dict[str, Any] = {"type": self.type}

    @property
    def limits(self) -> Limits:
        return self.spec.limits

    # -- once per job ---------------------------------------------------------------------
    @classmethod
    def preflight(cls, config: EnvironmentConfig, tasks: Sequence[Any] = ()) -> None:
        """Check, before any trial, that this environment can run here and can run ``tasks`` (the
        job's :class:`~trialbook.run.tasks.Task` objects); raise a one-line error if not."""

    @classmethod
    def job_started(cls, config: EnvironmentConfig, job_scratch: Path) -> None:
        """Called when a job (or its resume) starts, with the job's scratch directory (the parent of
        every trial's ``spec.scratch``): remove what a killed run of the job left behind."""

    # -- once per trial -------------------------------------------------------------------
    async def prepare(self) -> None:
        """Slow work before :meth:`start` that trials may share (building an image), bounded by its
        own timeout rather than ``timeouts.environment_setup``; default: nothing."""

    @abstractmethod
    async def start(self) -> None:
        """Make the environment: ``/app`` in the task's initial state, ``/logs/agent`` holding
        ``instruction.md``, ``/logs/verifier``, ``/tests`` and ``/solution`` absent or empty."""

    @abstractmethod
    async def stop(self) -> None:
        """Remove everything the environment made (called even after a failure; must not raise)."""

    async def fresh(self, suffix: str = "-eval") -> Environment:
        """A second, started environment of this trial in the task's initial state (SWE grading
        uses it: the grade must not depend on anything the agent changed). The caller stops it."""
        other = type(self)(self.spec.fresh_copy(suffix))
        await other.start()
        return other

    # -- phases ---------------------------------------------------------------------------
    async def begin_phase(self, phase: str) -> None:
        """The ``agent`` or ``verifier`` phase starts: its limits apply to what runs from now."""

    async def end_phase(self) -> str | None:
        """The phase is over: every process it left is killed. Returns why a limit stopped it
        (``memory limit 512 MiB exceeded``), or None."""
        return None

    def limits_record(self) -> dict[str, Any] | None:
        """What ``trial.json`` says of the limits (``extra.limits``), or None when nothing is set."""
        return None

    def add_agent_access(self, *, env: dict[str, str] | None = None, ro_dirs: dict[str, Path] | None = None,
                         wrapper: list[str] | None = None) -> None:
        """Give the agent phase (never the verifier) more than the task: variables (the gateway's
        trial key), host directories mounted read-only at the given paths (an installed agent, the
        gateway's socket) and a prefix of every command (the gateway's bridge). The runner calls it
        before :meth:`prepare` (a container mounts directories when it is made). Environments that
        cannot set ``agent_access``; the runner refuses such agents before any trial."""
        raise NotImplementedError(f"environment type {self.type} cannot give the agent phase host directories")

    # -- commands and files ---------------------------------------------------------------
    @abstractmethod
    async def exec(
        self,
        command: list[str],
        *,
        timeout_s: float,
        stdout_path: Path,
        stderr_path: Path | None = None,
        stdin_data: bytes | None = None,
        workdir: str | None = None,
        env: dict[str, str] | None = None,
    ) -> ExecResult:
        """Run ``command`` (in ``workdir``, default ``/app``, with ``env`` added); stdout and
        stderr are appended to host files (``stderr_path=None``: merged into stdout), each kept
        up to ``limits.output``. On timeout or cancellation everything it started is killed."""

    @abstractmethod
    async def upload(self, source: Path, target: str) -> None:
        """Copy a host file or directory to ``target``; ``/tests`` and ``/solution`` are read-only
        to commands and present only in their phase."""

    @abstractmethod
    async def download(self, source: str, target: Path, *, reserved: frozenset[str] = frozenset()) -> list[str]:
        """Copy what ``source`` holds into the host directory ``target``, safely: regular files
        only, size-capped, never following a link, never over a ``reserved`` top-level name.
        Returns notes on what was refused."""

    @abstractmethod
    async def reset_dir(self, path: str) -> list[str]:
        """Make ``path`` (``/logs/verifier``) a new empty directory; returns the names found there before."""

    async def reward_dir(self, path: str, host_dir: Path) -> Path:
        """A host directory holding what ``path`` holds, for reading reward files with ``O_NOFOLLOW``
        (default: a safe download into ``host_dir``)."""
        await self.download(path, host_dir)
        return host_dir
