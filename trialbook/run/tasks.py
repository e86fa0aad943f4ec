"""Tasks: the ``Task`` interface the runner uses, and Harbor-format task directories.

A Harbor-format task is a directory with ``task.toml``, ``instruction.md``, ``environment/``,
``tests/test.sh`` and ``solution/solve.sh``; a dataset is a directory of them. Every
selected task is checked before anything runs, so a broken one stops the job at start.
"""

from __future__ import annotations

import fnmatch
import hashlib
import math
import os
import shutil
import tomllib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from trialbook.errors import ConfigError, TaskError
from trialbook.layout.paths import TrialPaths, trial_dir_name
from trialbook.model.limits import Limits, task_requests
from trialbook.model.verdict import Verdict
from trialbook.run.environments.base import Environment
from trialbook.run.verifiers.reward import run_reward_verifier

#: Files of ``environment/`` that describe an image; the local environment does not build them.
IMAGE_FILES = {"Dockerfile", "docker-compose.yaml", "docker-compose.yml", ".dockerignore"}


@dataclass
class Task(ABC):
    """One problem to run. Subclasses say how the workspace is seeded and how it is graded."""

    name: str
    instruction: str
    metadata: dict[str, Any] = field(default_factory=dict)
    agent_timeout_s: float | None = None
    verifier_timeout_s: float | None = None
    source_dir: Path | None = None
    #: What the task asks for (task.toml [environment]); the block's config caps it.
    limits: Limits = field(default_factory=Limits)

    #: "reward" (tests/test.sh writes a reward) or "swe" (patch + FAIL_TO_PASS/PASS_TO_PASS).
    grading: str = "reward"
    #: docker/podman: an existing image to run the task in (else one is built from ``dockerfile``).
    image_name: str | None = None
    #: docker/podman: the Dockerfile to build, its directory the build context (default: the
    #: task's ``environment/Dockerfile``).
    dockerfile: Path | None = None
    #: Whether image environments seed ``/app`` too (SWE instances: the image gives the tools,
    #: the seed the repository's checkout); Harbor tasks' images make ``/app`` themselves.
    seed_in_image: ClassVar[bool] = False

    def seed_workspace(self, app_dir: Path) -> None:
        """Fill the trial's ``/app`` before the agent starts."""

    @property
    def tests_dir(self) -> Path | None:
        return None

    @property
    def solution_dir(self) -> Path | None:
        return None

    def content_hash(self) -> str:
        """A hash of the task's defining content (for archives and resume checks)."""
        return hashlib.sha256(self.instruction.encode()).hexdigest()

    def content_files(self) -> dict[str, str]:
        """SHA-256 of each part of the task's content, by name (what a resume check compares)."""
        return {"instruction": self.content_hash()}

    @abstractmethod
    async def verify(self, paths: TrialPaths, environment: Environment, timeout_s: float) -> Verdict:
        """Grade the trial's workspace after the agent ran."""


@dataclass
class HarborTask(Task):
    """A Harbor-format task directory."""

    def seed_workspace(self, app_dir: Path) -> None:
        """Copy ``environment/`` (minus Dockerfile and compose files) into ``/app``."""
        env_dir = self.source_dir / "environment" if self.source_dir else None
        if env_dir is None or not env_dir.is_dir():
            return
        for entry in sorted(env_dir.iterdir()):
            if entry.name in IMAGE_FILES:
                continue
            target = app_dir / entry.name
            if entry.is_symlink():
                continue  # never follow links out of the task directory
            if entry.is_dir():
                shutil.copytree(entry, target, symlinks=True, dirs_exist_ok=True)
            else:
                shutil.copy2(entry, target)

    @property
    def tests_dir(self) -> Path | None:
        return self.source_dir / "tests" if self.source_dir else None

    async def verify(self, paths: TrialPaths, environment: Environment, timeout_s: float) -> Verdict:
        """Run ``tests/test.sh`` (the trial's copy, at ``/tests``) and read the reward it wrote."""
        return await run_reward_verifier(paths, environment, timeout_s)

    @property
    def solution_dir(self) -> Path | None:
        sol = self.source_dir / "solution" if self.source_dir else None
        return sol if sol is not None and sol.is_dir() else None

    def content_hash(self) -> str:
        """SHA-256 over every file of the task directory (relative path + bytes), in sorted order."""
        h = hashlib.sha256()
        assert self.source_dir is not None
        for p in sorted(self.source_dir.rglob("*")):
            if p.is_file() and not p.is_symlink():
                h.update(str(p.relative_to(self.source_dir)).encode() + b"\0")
                h.update(p.read_bytes() + b"\0")
        return h.hexdigest()

    def content_files(self) -> dict[str, str]:
        """SHA-256 of every file of the task directory (links by their target), by relative path."""
        assert self.source_dir is not None
        out: dict[str, str] = {}
        for p in sorted(self.source_dir.rglob("*")):
            rel = str(p.relative_to(self.source_dir))
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            elif p.is_file():
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        return out


def select_names(names: list[str], include: list[str], exclude: list[str]) -> list[str]:
    """Names matching any include glob (all when none given) and no exclude glob, sorted."""
    chosen = [n for n in names if not include or any(fnmatch.fnmatchcase(n, g) for g in include)]
    return sorted(n for n in chosen if not any(fnmatch.fnmatchcase(n, g) for g in exclude))


def _timeout(section: Any, task_dir: Path, name: str) -> float | None:
    if not isinstance(section, dict) or "timeout_sec" not in section:
        return None
    value = section["timeout_sec"]
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise TaskError(f"task.toml [{name}] timeout_sec must be a positive number, got {value!r}", task_dir)
    return float(value)


def _requests(section: Any, task_dir: Path) -> Limits:
    if not isinstance(section, dict):
        return Limits()
    try:
        return task_requests(section, "task.toml")
    except ConfigError as exc:
        raise TaskError(exc.message, task_dir) from None


def load_harbor_task(task_dir: Path, *, need_solution: bool = False) -> HarborTask:
    """Read and check one task directory; a problem raises :class:`TaskError` naming the dir."""
    name = task_dir.name
    trial_dir_name(name, "v", 1, single=True)  # rejects unsafe names
    missing = [
        rel
        for rel in ("task.toml", "instruction.md", "environment", "tests/test.sh")
        if not (task_dir / rel).exists()
    ]
    if need_solution and not (task_dir / "solution" / "solve.sh").is_file():
        missing.append("solution/solve.sh (needed by the oracle agent)")
    if missing:
        raise TaskError(f"broken task: missing {', '.join(missing)}", task_dir)
    try:
        meta = tomllib.loads((task_dir / "task.toml").read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TaskError(f"task.toml is not valid TOML: {exc}", task_dir) from None
    instruction = (task_dir / "instruction.md").read_text(encoding="utf-8")
    if not instruction.strip():
        raise TaskError("broken task: instruction.md is empty", task_dir)
    metadata = meta.get("metadata") if isinstance(meta.get("metadata"), dict) else {}
    return HarborTask(
        name=name,
        instruction=instruction,
        metadata=dict(metadata),
        agent_timeout_s=_timeout(meta.get("agent"), task_dir, "agent"),
        verifier_timeout_s=_timeout(meta.get("verifier"), task_dir, "verifier"),
        source_dir=task_dir.resolve(),
        limits=_requests(meta.get("environment"), task_dir),
    )


def load_harbor_dataset(
    dataset_dir: Path,
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    *,
    need_solution: bool = False,
) -> list[HarborTask]:
    """Every selected task of a dataset directory, checked; hidden entries are ignored."""
    if not dataset_dir.is_dir():
        raise TaskError("task dataset directory not found", dataset_dir, not_found=True)
    names = [p.name for p in dataset_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    selected = select_names(names, include or [], exclude or [])
    if not selected:
        raise TaskError("no task matches the include/exclude filters", dataset_dir)
    tasks: list[HarborTask] = []
    broken: list[TaskError] = []
    for n in selected:
        try:
            tasks.append(load_harbor_task(dataset_dir / n, need_solution=need_solution))
        except TaskError as exc:
            broken.append(exc)
    if len(broken) == 1:
        raise broken[0]
    if broken:  # every broken task at once, so one run finds them all
        listed = "; ".join(f"{e.path.name if e.path else '?'} ({e.message.removeprefix('broken task: ')})"
                           for e in broken)
        raise TaskError(f"{len(broken)} broken tasks: {listed} (details: trialbook check {dataset_dir})",
                        dataset_dir)
    return tasks
