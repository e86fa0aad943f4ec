"""A task's ``docker-compose.yaml``: the other services of a trial (a database, a web server), as Harbor runs them.

As in Harbor, the service ``main`` is the trial's own container: trialbook makes it from the
task's image exactly as without a compose file (mounts, limits, labels, ``sleep infinity``);
of ``main``'s entry only ``environment`` is used (the variables of every command). Every
other service is a *sidecar*, started by the engine's compose tool (``podman-compose`` for
podman, ``docker compose`` for docker) from a file trialbook writes in the trial's scratch:

* each trial has its own network, made by trialbook and labelled with the job; it is
  ``--internal`` (the services reach each other by service name, ``main`` included, and
  nothing outside) unless ``environment.network: true``;
* a sidecar with ``build:`` is built once per content like the task's image
  (``localhost/trialbook/<task>-<service>:<hash>``), its context inside ``environment/``;
* a sidecar may not reach the host: ``privileged``, host namespaces, devices, added
  capabilities, published ports and bind mounts of host paths are refused (a ``TaskError``
  naming the key); named volumes are the trial's and removed with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import yaml

from trialbook.config import EnvironmentConfig
from trialbook.errors import TaskError
from trialbook.run.environments.base import EnvironmentSpec
from trialbook.run.environments.images import image_tag

if TYPE_CHECKING:
    from trialbook.run.scratch import TrialScratch

COMPOSE_FILES = ("docker-compose.yaml", "docker-compose.yml", "compose.yaml", "compose.yml")
MAIN = "main"
#: What a sidecar's entry may hold (anything else could reach the host, or is not supported).
ALLOWED_KEYS = frozenset({"image", "build", "command", "entrypoint", "environment", "working_dir", "user",
                          "healthcheck", "depends_on", "expose", "tmpfs", "volumes", "labels", "hostname",
                          "shm_size", "stop_signal", "stop_grace_period", "init", "read_only"})
_NAMED_VOLUME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*:/")


def find_compose(context: Path) -> Path | None:
    """The compose file of a task's ``environment/`` directory, if it has one."""
    return next((context / n for n in COMPOSE_FILES if (context / n).is_file()), None)


@dataclass
class Sidecar:
    """One service besides ``main``: its entry as it will be written, and the image to build first."""

    name: str
    entry: dict[str, Any]
    #: (tag, context, Dockerfile) when the service is built from the task's files.
    build: tuple[str, Path, Path] | None = None


@dataclass
class ComposePlan:
    """What a task's compose file asks for, checked (see the module docstring)."""

    source: Path
    main_env: dict[str, str] = field(default_factory=dict)
    sidecars: list[Sidecar] = field(default_factory=list)

    def write(self, path: Path, *, network: str, labels: dict[str, str]) -> None:
        """The compose file of one trial: the sidecars on its network, with its labels."""
        services = {}
        for car in self.sidecars:
            entry = dict(car.entry)
            entry["labels"] = {**_as_dict(entry.get("labels"), self.source, car.name, "labels"), **labels}
            entry["networks"] = {"trial": {"aliases": [car.name]}}
            services[car.name] = entry
        doc = {"services": services, "networks": {"trial": {"external": True, "name": network}}}
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def _bad(source: Path, message: str) -> TaskError:
    return TaskError(f"{source.name}: {message}", source)


def _as_dict(value: Any, source: Path, service: str, key: str) -> dict[str, str]:
    """``environment``/``labels`` as a mapping (compose allows a list of ``NAME=value`` too)."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): "" if v is None else str(v) for k, v in value.items()}
    if isinstance(value, list) and all(isinstance(x, str) for x in value):
        return dict(x.split("=", 1) if "=" in x else (x, "") for x in value)
    raise _bad(source, f"services.{service}.{key} must be a mapping or a list of NAME=value")


def read_plan(source: Path, task_name: str) -> ComposePlan:
    """Read and check a task's compose file (one-line ``TaskError`` naming what is wrong)."""
    try:
        doc = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise _bad(source, f"cannot read it: {str(exc).splitlines()[0]}") from None
    services = doc.get("services") if isinstance(doc, dict) else None
    if not isinstance(services, dict) or not all(isinstance(v, dict) for v in services.values()):
        raise _bad(source, "expected a mapping `services:` of service mappings")
    plan = ComposePlan(source, main_env=_as_dict((services.get(MAIN) or {}).get("environment"), source, MAIN,
                                                  "environment"))
    for name, entry in services.items():
        if name == MAIN:
            continue
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", str(name)):
            raise _bad(source, f"service name {name!r}: use lowercase letters, digits, '-' and '_'")
        extra = sorted(set(entry) - ALLOWED_KEYS)
        if extra:
            raise _bad(source, f"services.{name}.{extra[0]} is not supported (a service may not reach the host; "
                               "see docs/environments.md)")
        entry = dict(entry)
        for volume in entry.get("volumes") or []:
            if not isinstance(volume, str) or not _NAMED_VOLUME.match(volume):
                raise _bad(source, f"services.{name}.volumes: {volume!r}: only named volumes "
                                   "(name:/path), no host paths")
        depends = entry.get("depends_on")
        if isinstance(depends, list):
            entry["depends_on"] = [d for d in depends if d != MAIN]
        elif isinstance(depends, dict):
            entry["depends_on"] = {k: v for k, v in depends.items() if k != MAIN}
        if not entry.get("depends_on"):
            entry.pop("depends_on", None)
        car = Sidecar(str(name), entry)
        if "build" in entry:
            car.build = _build(source, task_name, str(name), entry.pop("build"))
            entry["image"] = car.build[0]
        elif not isinstance(entry.get("image"), str):
            raise _bad(source, f"services.{name} needs an image or a build")
        plan.sidecars.append(car)
    return plan


def _build(source: Path, task_name: str, service: str, build: Any) -> tuple[str, Path, Path]:
    """(tag, context, Dockerfile) of a sidecar's ``build:``, which must stay inside ``environment/``."""
    if isinstance(build, str):
        build = {"context": build}
    if not isinstance(build, dict) or set(build) - {"context", "dockerfile"}:
        raise _bad(source, f"services.{service}.build: only context and dockerfile are supported")
    root = source.parent.resolve()
    context = (root / str(build.get("context", "."))).resolve()
    dockerfile = (context / str(build.get("dockerfile", "Dockerfile"))).resolve()
    if not context.is_relative_to(root) or not dockerfile.is_relative_to(root):
        raise _bad(source, f"services.{service}.build: the context must be inside the task's environment/")
    if not dockerfile.is_file():
        raise _bad(source, f"services.{service}.build: no {dockerfile.relative_to(root)}")
    return image_tag(f"{task_name}-{service}", context), context, dockerfile


def compose_argv(engine: str, engine_argv: list[str], run_flags: list[str], wrapper_dir: Path, project: str,
                 file: Path, *args: str) -> list[str]:
    """The compose tool's command line for one trial's project: ``docker compose``, or
    ``podman-compose`` driving podman through a one-line wrapper that adds ``engine_flags``
    (podman-compose would put its ``--podman-args`` after the subcommand, where ``network`` and
    ``volume`` refuse them)."""
    if engine == "docker":
        return [*engine_argv, "compose", "-p", project, "-f", str(file), *args]
    tool = shutil.which("podman-compose") or str(Path(sys.executable).with_name("podman-compose"))
    if not Path(tool).is_file():
        raise TaskError("this task has a compose file: podman needs podman-compose for its other services "
                        "(pip install 'trialbook[compose]' or podman-compose)", file)
    wrapper = wrapper_dir / "podman"
    wrapper.write_text("#!/bin/sh\nexec " + " ".join(shlex.quote(a) for a in engine_argv) + ' "$@"\n',
                       encoding="utf-8")
    wrapper.chmod(0o700)
    extra = [f"--podman-run-args={shlex.join(run_flags)}"] if run_flags else []
    return [tool, "--podman-path", str(wrapper), "--in-pod", "false", *extra, "-p", project, "-f", str(file), *args]


class SidecarsMixin:
    """The compose part of the container environment (container.py): a trial's network and the
    services besides ``main``, started before its container and removed after it."""

    compose: ComposePlan | None
    container: str | None
    _network: str | None
    engine: ClassVar[str]
    spec: EnvironmentSpec

    if TYPE_CHECKING:  # provided by ContainerEnvironment
        box: TrialScratch

        def _argv(self, config: EnvironmentConfig, *args: str) -> list[str]: ...
        async def _run(self, *args: str, timeout_s: float = ..., check: bool = ...,
                       env: dict[str, str] | None = ..., argv: list[str] | None = ...) -> tuple[int, str]: ...
        def job_labels(self) -> dict[str, str]: ...

    def _compose_argv(self, *args: str) -> list[str]:
        assert self._network is not None
        return compose_argv(self.engine, self._argv(self.spec.config), list(self.spec.config.run_flags),
                            self.box.root, self._network, self.box.root / "compose.yaml", *args)

    async def _start_sidecars(self) -> None:
        """The trial's own network (internal unless the network is on), then its other services on it."""
        assert self.compose is not None and self.container is not None
        self._network = re.sub(r"[^a-z0-9_-]+", "-", self.container.lower())  # a compose project name too
        labels = self.job_labels()
        await self._run("network", "create", *([] if self.spec.config.network else ["--internal"]),
                        *(a for k, v in labels.items() for a in ("--label", f"{k}={v}")), self._network)
        await asyncio.to_thread(self.compose.write, self.box.root / "compose.yaml", network=self._network,
                                labels=labels)
        await self._run("compose", argv=self._compose_argv("up", "-d"), timeout_s=self.spec.config.build_timeout)

    async def _stop_sidecars(self) -> None:
        """Remove the services, their volumes and the network (never raises)."""
        if self._network is None:
            return
        with contextlib.suppress(Exception):
            await self._run("compose", argv=self._compose_argv("down", "-v", "-t", "0"), check=False)
        with contextlib.suppress(Exception):
            await self._run("network", "rm", "-f", self._network, check=False)
        self._network = None
