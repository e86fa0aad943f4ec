"""Execution backends: what runs one planned trial and hands back its record.

The scheduler (:mod:`trialbook.run.scheduler`) keeps the job's bookkeeping (plan, resume,
lock, progress, aggregate, Ctrl-C); a backend only decides *where* a trial runs. ``local``
runs it in this process; ``ray`` (:mod:`trialbook.run.backends.ray_backend`, imported only
when chosen) runs it as a Ray task on a cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from trialbook.config import BlockConfig
from trialbook.layout.paths import JobPaths
from trialbook.model.trial import TrialRecord
from trialbook.run.agents.base import Agent
from trialbook.run.trial import TrialEnv, TrialPlan, run_trial


class TrialBackend(Protocol):
    """Runs planned trials; one instance serves one run of one job."""

    async def start(self, env: TrialEnv, todo: list[TrialPlan]) -> None:
        """Get ready before the first trial (connect to a cluster, check what it can run)."""

    async def run(self, env: TrialEnv, plan: TrialPlan, *, retries: int) -> TrialRecord:
        """Run one trial to its finished record (written to ``trial.json``); cancelling the
        awaiting task cancels the trial, which is then recorded ``cancelled``."""
        ...

    async def stop(self) -> None:
        """Release what :meth:`start` took (always called, also after a cancel)."""


class LocalBackend:
    """Every trial in this process (asyncio; the sandbox processes are its children)."""

    async def start(self, env: TrialEnv, todo: list[TrialPlan]) -> None:
        return None

    async def run(self, env: TrialEnv, plan: TrialPlan, *, retries: int) -> TrialRecord:
        return await run_trial(env, plan, retries=retries)

    async def stop(self) -> None:
        return None


def check_backend(config: BlockConfig, agents: dict[str, Agent], config_path: Path) -> None:
    """Refuse, before any trial, what the configured backend cannot run (one line each)."""
    if config.execution.backend == "ray":
        from trialbook.run.backends.ray_backend import check_ray_job

        check_ray_job(config, agents, config_path)


def make_backend(config: BlockConfig, job: JobPaths) -> TrialBackend:
    """The backend ``execution.backend`` names (Ray is imported only here, only when chosen)."""
    if config.execution.backend == "ray":
        from trialbook.run.backends.ray_backend import RayBackend

        return RayBackend(config.execution, job)
    return LocalBackend()
