"""The agent interface: what an agent gets (``AgentContext``) and returns (``AgentResult``).

Agents run their commands through ``ctx.exec`` (the trial's :class:`Environment`: a bubblewrap
sandbox, a container, ...), never on the host. An agent that hits
one of its own limits (steps, cost) reports it in ``AgentResult.limit`` rather than raising.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from trialbook.config import VariantConfig
from trialbook.errors import ConfigError
from trialbook.layout.paths import TrialPaths
from trialbook.model.usage import Usage
from trialbook.plugins import entry_point_classes, is_import_path, load_class
from trialbook.run.environments.base import Environment, ExecResult
from trialbook.run.tasks import Task

if TYPE_CHECKING:
    from trialbook.run.gateway.server import TrialGateway


@dataclass
class AgentContext:
    """Everything an agent needs for one trial."""

    task: Task
    variant: VariantConfig
    paths: TrialPaths
    environment: Environment
    timeout_s: float
    trial_id: str
    attempt: int
    #: The trial's access to the job's model gateway (agents with ``uses_gateway`` only).
    gateway: TrialGateway | None = None

    async def exec(self, command: list[str], *, timeout_s: float | None = None, workdir: str | None = None,
                   env: dict[str, str] | None = None) -> ExecResult:
        """Run a command in the environment, appending its output to ``agent/stdout.txt``/``stderr.txt``."""
        return await self.environment.exec(
            command,
            timeout_s=timeout_s or self.timeout_s,
            stdout_path=self.paths.agent_stdout,
            stderr_path=self.paths.agent_stderr,
            workdir=workdir,
            env=env,
        )


@dataclass
class AgentResult:
    """What the agent phase produced."""

    exit_code: int | None = 0
    timed_out: bool = False
    limit: str | None = None  # e.g. "step_limit", "cost_limit": a recorded outcome, not a crash
    usage: Usage | None = None
    n_turns: int | None = None
    n_tool_calls: int | None = None
    commands: list[dict[str, Any]] = field(default_factory=list)  # [{command, exit_code, output}]
    extra: dict[str, Any] = field(default_factory=dict)


class Agent(ABC):
    """Base class of every agent."""

    name: ClassVar[str]
    needs_solution: ClassVar[bool] = False
    #: The agent's own JSON log under ``agent/``, if it writes one: the ATIF writer takes the
    #: details the LiteLLM log lacks from it (e.g. which actions the agent parsed from a reply).
    native_log: ClassVar[str | None] = None
    #: Whether the agent's model calls go through the job's model gateway (run/gateway): the
    #: runner then starts the gateway and gives each trial's sandbox a base URL and a trial key.
    uses_gateway: ClassVar[bool] = False

    @property
    def needs_agent_access(self) -> bool:
        """Whether the trial's environment must give the agent phase more than the task (the model
        gateway, an installed program): see ``Environment.add_agent_access``."""
        return (self.uses_gateway or type(self).install is not Agent.install
                or type(self).agent_dirs is not Agent.agent_dirs)

    def gateway_limits(self, variant: VariantConfig) -> tuple[int | None, float | None]:
        """The (step, cost) budget the gateway enforces on each trial of ``variant`` (None: none)."""
        return None, None

    async def install(self, variant: VariantConfig, cache_root: Path, ro_binds: list[str]) -> None:
        """Install what the variant needs once per block, before any trial (default: nothing);
        ``ro_binds`` are the block's read-only host paths (environment.ro_binds)."""

    def agent_dirs(self, variant: VariantConfig) -> dict[str, Path]:
        """Host directories the agent phase gets read-only (sandbox path: host path), e.g. the program
        :meth:`install` made; given to the trial's environment before it starts (a container mounts
        them when it is made). Default: none."""
        return {}

    def check(self, variant: VariantConfig) -> None:
        """Refuse a variant whose settings this agent cannot use (called at job start)."""

    def preflight(self, variant: VariantConfig) -> None:
        """Check, before any trial runs, that what the variant needs answers (e.g. its model server).

        Raises :class:`trialbook.errors.ServiceUnavailableError`; the default checks nothing.
        """

    @abstractmethod
    async def run(self, ctx: AgentContext) -> AgentResult:
        """Work on the task through ``ctx.exec`` / ``ctx.environment``; return when done."""


AGENTS: dict[str, type[Agent]] = {}


def register_agent(cls: type[Agent]) -> type[Agent]:
    """Class decorator adding an agent to the registry under ``cls.name``."""
    AGENTS[cls.name] = cls
    return cls


def get_agent(name: str) -> Agent:
    """An instance of the named agent: a registered name, one installed under the entry-point
    group ``trialbook.agents``, or an import path ``package.module:Class``. Unknown names are a
    config error listing the known ones."""
    if is_import_path(name):
        return load_class(name, Agent, "agent")()
    if name not in AGENTS:
        AGENTS.update({k: v for k, v in entry_point_classes("trialbook.agents", Agent).items() if k not in AGENTS})
    if name not in AGENTS:
        raise ConfigError(f"unknown agent {name!r}; known agents: {', '.join(sorted(AGENTS))}")
    return AGENTS[name]()
