"""What a container's agent phase gets besides the task: variables, read-only host directories and
a command prefix (``Environment.add_agent_access``; the model gateway and installed agents use it).

A container's mounts are fixed when it is made, so directories must be given before the
environment starts; the runner does that (trial.py). Variables and the prefix apply to each
command of the agent phase and may change at any time. Nothing is copied: a directory of
hundreds of MB (an installed Claude Code) is one read-only bind mount per trial.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from trialbook.errors import TaskError
from trialbook.run.environments.base import EnvironmentSpec

#: ``sh -c`` script printing where the program ``$1`` is in the image: at its own path when that is
#: executable there, else the first of its name on the image's ``PATH`` (e.g. ``/usr/local/bin/python3``).
FIND_PROGRAM = 'if [ -x "$1" ]; then echo "$1"; else command -v "${1##*/}" || true; fi'


#: The task's own paths, which no host directory may cover.
_TASK_PATHS = ("/app", "/logs", "/tests", "/solution")


@dataclass
class AgentAccess:
    """The agent phase's additions, as given so far."""

    env: dict[str, str] = field(default_factory=dict)
    #: Container path -> host directory, mounted read-only when the container is made.
    ro_dirs: dict[str, Path] = field(default_factory=dict)
    wrapper: list[str] = field(default_factory=list)

    def add(self, *, env: dict[str, str] | None, ro_dirs: dict[str, Path] | None, wrapper: list[str] | None,
            started: bool, engine: str) -> None:
        """Add to what the agent phase gets; a directory new after the container was made is refused
        (a ValueError naming it), since it cannot be mounted any more."""
        for target, host in (ro_dirs or {}).items():
            clean = target.rstrip("/")
            if not target.startswith("/") or clean == "" or any(clean == r or clean.startswith(r + "/")
                                                                for r in _TASK_PATHS):
                raise ValueError(f"cannot mount a host directory at {target!r} in a {engine} container")
            if started and self.ro_dirs.get(target) != host:
                raise ValueError(f"{engine} mounts host directories when the container is made: {host} cannot be "
                                 f"added at {target} after the environment started (give it before start, e.g. "
                                 "from Agent.agent_dirs)")
        self.env.update(env or {})
        self.ro_dirs.update(ro_dirs or {})
        if wrapper is not None:
            self.wrapper = list(wrapper)


class AgentAccessMixin:
    """``add_agent_access`` for the container environment (container.py)."""

    access: AgentAccess
    container: str | None
    image: str | None
    engine: ClassVar[str]
    spec: EnvironmentSpec

    if TYPE_CHECKING:  # provided by ContainerEnvironment
        async def _run(self, *args: str, timeout_s: float = ..., check: bool = ...,
                       env: dict[str, str] | None = ..., argv: list[str] | None = ...) -> tuple[int, str]: ...

    def add_agent_access(self, *, env: dict[str, str] | None = None, ro_dirs: dict[str, Path] | None = None,
                         wrapper: list[str] | None = None) -> None:
        """Directories are bind-mounted when the container is made (so before :meth:`start`); the
        variables and the command prefix apply to each command of the agent phase."""
        self.access.add(env=env, ro_dirs=ro_dirs, wrapper=wrapper, started=self.container is not None,
                        engine=self.engine)

    async def _resolve_wrapper(self) -> None:
        """The agent phase's command prefix names a program of the image (the model gateway's bridge
        needs a ``python3``): at the path it names, else by its name on the image's ``PATH``."""
        assert self.container is not None
        program = self.access.wrapper[0]
        code, out = await self._run("exec", self.container, "sh", "-c", FIND_PROGRAM, "_", program, check=False)
        found = out.strip().splitlines()[-1] if code == 0 and out.strip() else ""
        if not found.startswith("/"):
            raise TaskError(f"task {self.spec.task_name}: the agent phase needs {os.path.basename(program)} "
                            f"in the task's image ({self.image}) to reach the model gateway, and the image has "
                            f"none{' (nor a sh to look for it)' if code in (126, 127) else ''}: add it to "
                            "environment/Dockerfile (see docs/environments.md)", self.spec.task_dir)
        self.access.wrapper[0] = found
