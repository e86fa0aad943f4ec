"""The asyncio scheduler: runs a job's trials under a concurrency limit and keeps files current.

After every finished trial the job aggregate and the block's ``status`` section are
rewritten (atomically, throttled). Ctrl-C or SIGTERM cancels running trials, which are
recorded as ``cancelled``; the aggregate is written with status ``cancelled``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from trialbook import secrets
from trialbook.block.status import update_status
from trialbook.config import BlockConfig, parse_config, read_yaml, runtime_problems
from trialbook.errors import ConfigError, TrialbookError
from trialbook.jsonio import read_json, write_json
from trialbook.layout.paths import BlockPaths, JobPaths
from trialbook.model.aggregate import aggregate
from trialbook.model.outcome import ERROR_OUTCOMES, Outcome
from trialbook.model.trial import TrialRecord, utc_now
from trialbook.run.agents.base import get_agent
from trialbook.run.backends import TrialBackend, check_backend, make_backend
from trialbook.run.environments.registry import environment_class
from trialbook.run.gateway.server import Gateway
from trialbook.run.job import (
    JobLock,
    plan_trials,
    unused_job_name,
    write_or_check_snapshot,
    write_or_check_task_hashes,
)
from trialbook.run.overrides import RunOverrides
from trialbook.run.swe.job_report import AggregateExtra, swe_aggregate_extra
from trialbook.run.task_sources import load_tasks
from trialbook.run.trajectory_writer import write_trajectory
from trialbook.run.trial import AfterAgentHook, TrialEnv, TrialPlan

ProgressCallback = Callable[[int, int, TrialRecord | None], None]
#: Called (in a worker thread) with each trial's final record once its files are written.
AfterTrialHook = Callable[[TrialRecord], None]

_log = logging.getLogger("trialbook.run")


class JobCancelled(TrialbookError):
    """The job was interrupted; finished trials are kept and the job can be resumed."""

    #: What the interrupted run did (set by the runner, so the run can still be archived).
    outcome: JobOutcome | None = None


@dataclass
class JobOutcome:
    """What ``run_job`` returns: where the job is and what happened."""

    job_name: str
    job_dir: Path
    status: str
    records: list[TrialRecord]
    aggregate: dict[str, Any]
    resumed: bool
    n_skipped: int
    started_at: str
    finished_at: str


@dataclass
class JobSetup:
    """A job ready to run: config, tasks, plan and where it writes."""

    block: BlockPaths
    config_path: Path
    raw_config: dict[str, Any]
    config: BlockConfig
    job: JobPaths
    plans: list[TrialPlan]
    #: Default: write every trial's ATIF ``agent/trajectory.json`` (run/trajectory_writer.py).
    after_agent: list[AfterAgentHook] = field(default_factory=lambda: [write_trajectory])
    #: Extra aggregate keys, recomputed at every aggregate write (SWE-style jobs: report.json + figures).
    aggregate_extra: AggregateExtra | None = None
    #: Writers of other layouts fed trial by trial (e.g. the VeloraHarness layout as a run output);
    #: a failing hook is logged and never changes the trial.
    after_trial: list[AfterTrialHook] = field(default_factory=list)


def prepare_job(config_path: Path, job_name: str | None = None,
                overrides: RunOverrides | None = None) -> JobSetup:
    """Load and check everything a job needs before any trial runs (broken tasks fail here)."""
    config_path = config_path.resolve()
    raw = read_yaml(config_path)
    if overrides is not None and not overrides.is_empty():
        if not isinstance(raw, dict):
            raise ConfigError("expected a mapping at the top level", config_path)
        raw = overrides.apply(raw, config_path)
    config = parse_config(raw, config_path)
    secrets.register(secrets.config_secrets(raw))  # captured once; every writer scrubs them
    problems = runtime_problems(config)
    if problems:  # all at once, before any trial: not one failed trial after another
        raise ConfigError("; ".join(problems), config_path)
    block = BlockPaths(config_path.parent)
    agents = {v.name: get_agent(v.agent) for v in config.variants}
    for v in config.variants:
        agents[v.name].check(v)
    need_solution = any(a.needs_solution for a in agents.values())
    tasks = load_tasks(config, block, need_solution=need_solution)
    env_cls = environment_class(config.environment)
    for v in config.variants:
        if agents[v.name].needs_agent_access and not env_cls.agent_access:
            raise ConfigError(f"variant {v.name}: agent {v.agent} needs an installed program or the model gateway, "
                              f"which environment type {env_cls.type} cannot give a trial; use type local, docker or podman",
                              config_path)
    env_cls.preflight(config.environment, tasks)  # e.g. no engine: one line, now
    check_backend(config, agents, config_path)  # e.g. ray not installed: one line, now
    name = job_name or unused_job_name(config.output_dir(block.root))
    job = block.job(name, kind=config.kind, jobs_dir=config.output_dir(block.root))
    return JobSetup(block, config_path, raw, config, job, plan_trials(tasks, config),
                    aggregate_extra=swe_aggregate_extra(tasks, config, job))


def _load_existing(job: JobPaths, plans: list[TrialPlan]) -> dict[str, TrialRecord]:
    """Finished, non-cancelled trials already on disk (these are not run again)."""
    done: dict[str, TrialRecord] = {}
    for plan in plans:
        path = job.trial(plan.dir_name).trial_json
        if not path.exists():
            continue
        try:
            rec = TrialRecord.model_validate(read_json(path))
        except (TrialbookError, ValidationError):
            continue  # half-written by a crashed runner: run it again
        if rec.status == "finished" and rec.outcome not in (None, Outcome.CANCELLED):
            done[plan.dir_name] = rec
    return done


class JobRunner:
    """Runs one prepared job."""

    def __init__(self, setup: JobSetup, progress: ProgressCallback | None = None) -> None:
        self.s = setup
        self.progress = progress
        self.records: dict[str, TrialRecord] = {}
        self.started_at = utc_now()
        self._last_write = 0.0
        #: Where each trial runs (execution.backend): this process, or a Ray cluster.
        self.backend: TrialBackend = make_backend(setup.config, setup.job)

    def _aggregate(self, status: str, finished_at: str | None = None) -> dict[str, Any]:
        cfg = self.s.config
        return aggregate(
            self.records.values(), job=self.s.job.name, kind=cfg.kind, attempts=cfg.attempts,
            n_planned=len(self.s.plans), started_at=self.started_at, finished_at=finished_at,
            status=status,
            extra=self.s.aggregate_extra(list(self.records.values())) if self.s.aggregate_extra else None,
            dataset=cfg.tasks.dataset_label(),
        )

    def _write_progress(self, status: str, *, force: bool = False, finished_at: str | None = None) -> dict[str, Any]:
        """The block's state after every trial; results.json at most once a second (and when forced);
        config.yaml's status snapshot only when forced (the job starts or ends)."""
        counts = Counter(str(r.outcome) for r in self.records.values() if r.outcome)
        update_status(self.s.config_path, {
            "job": self.s.job.name,
            "job_dir": str(self.s.job.dir),
            "state": status,
            "done": self._n_finished(),
            "total": len(self.s.plans),
            "counts": dict(sorted(counts.items())),
            "started_at": self.started_at,
            "updated_at": utc_now(),
        }, snapshot=force)
        now = time.monotonic()
        if not force and now - self._last_write < 1.0:
            return {}
        self._last_write = now
        agg = self._aggregate(status, finished_at)
        write_json(self.s.job.aggregate, agg)
        return agg

    async def _run_one(self, env: TrialEnv, plan: TrialPlan, sem: asyncio.Semaphore) -> None:
        async with sem:
            retries = 0
            while True:
                _log.info("trial %s started (task %s, variant %s, attempt %d%s)", plan.dir_name,
                          plan.task.name, plan.variant.name, plan.attempt,
                          f", retry {retries}" if retries else "")
                rec = await self.backend.run(env, plan, retries=retries)
                if rec.outcome == Outcome.INFRA_ERROR and retries < self.s.config.retries.infra_error:
                    _log.warning("trial %s: infra_error (%s), retrying", plan.dir_name, rec.reason)
                    retries += 1
                    continue
                break
        self.records[plan.dir_name] = rec
        for hook in self.s.after_trial:
            try:
                await asyncio.to_thread(hook, rec)
            except Exception as exc:  # noqa: BLE001 - another layout's writer must not lose this trial
                _log.error("trial %s: writing it in another layout failed: %s", plan.dir_name, exc)
        error = rec.outcome in ERROR_OUTCOMES
        _log.log(logging.WARNING if error else logging.INFO, "trial %s finished: %s in %.1fs%s",
                 plan.dir_name, rec.outcome, rec.duration_s or 0.0,
                 f" ({rec.exception.type if rec.exception else 'error'}: {rec.reason})" if error else "")
        self._write_progress("running")
        if self.progress:
            self.progress(len(self.records), len(self.s.plans), rec)

    async def run(self) -> JobOutcome:
        s = self.s
        s.job.dir.mkdir(parents=True, exist_ok=True)
        with JobLock(s.job.lock):
            resumed = write_or_check_snapshot(s.job, s.raw_config)
            write_or_check_task_hashes(s.job, list({p.task.name: p.task for p in s.plans}.values()), resumed)
            self.records = _load_existing(s.job, s.plans)
            n_skipped = len(self.records)
            todo = [p for p in s.plans if p.dir_name not in self.records]
            env = TrialEnv(
                job_name=s.job.name, job=s.job, config=s.config, scratch_root=s.block.scratch,
                agents={v.name: get_agent(v.agent) for v in s.config.variants},
                after_agent=list(s.after_agent), environment=environment_class(s.config.environment),
            )
            await asyncio.to_thread(env.environment_class().job_started, s.config.environment,
                                    s.block.scratch / s.job.name)
            if todo:
                try:
                    env.gateway = await _prepare_agents(env, s.block.agent_cache)
                    await self.backend.start(env, todo)
                except asyncio.CancelledError:
                    await asyncio.shield(self.backend.stop())
                    raise JobCancelled(f"job {s.job.name} interrupted before its first trial (installing agents, "
                                       "starting the model gateway or connecting to Ray); no trial ran") from None
            _log.info("job %s: %d trials planned, %d already done%s, concurrency %d", s.job.name,
                      len(s.plans), n_skipped, " (resumed)" if resumed else "", s.config.concurrency)
            self._write_progress("running", force=True)
            if self.progress:
                self.progress(len(self.records), len(s.plans), None)
            sem = asyncio.Semaphore(s.config.concurrency)
            tasks = [asyncio.create_task(self._run_one(env, p, sem)) for p in todo]
            status = "completed"
            try:
                await asyncio.gather(*tasks)
            except asyncio.CancelledError:
                status = "cancelled"
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                self._collect_cancelled(todo)
            finally:
                await asyncio.shield(self.backend.stop())
                if env.gateway is not None:
                    await asyncio.shield(env.gateway.stop())
            finished_at = utc_now()
            agg = self._write_progress(status, force=True, finished_at=finished_at)
        outcome = JobOutcome(s.job.name, s.job.dir, status, list(self.records.values()), agg,
                             resumed, n_skipped, self.started_at, finished_at)
        _log.log(logging.WARNING if status == "cancelled" else logging.INFO, "job %s %s: %s", s.job.name,
                 status, ", ".join(f"{k}={v}" for k, v in agg.get("outcomes", {}).items()) or "no trials")
        if status == "cancelled":
            finished = self._n_finished()
            cancelled = len(self.records) - finished
            exc = JobCancelled(
                f"job {s.job.name} interrupted: {finished} of {len(s.plans)} trials finished; "
                f"{cancelled} cancelled and {len(s.plans) - len(self.records)} not started run "
                "when the job is resumed"
            )
            exc.outcome = outcome
            raise exc
        return outcome

    def _n_finished(self) -> int:
        """Trials that ran to an outcome (cancelled ones run again on resume, so they do not count)."""
        return sum(1 for r in self.records.values() if r.outcome not in (None, Outcome.CANCELLED))

    def _collect_cancelled(self, todo: list[TrialPlan]) -> None:
        """Note cancelled trials in the records so the aggregate counts them, and trials that finished
        while being cancelled (a remote trial can end before the cancel reaches it)."""
        for plan in todo:
            if plan.dir_name in self.records:
                continue
            path = self.s.job.trial(plan.dir_name).trial_json
            if path.exists():
                try:
                    rec = TrialRecord.model_validate(read_json(path))
                except (TrialbookError, ValidationError):
                    continue
                if rec.status == "finished" and rec.outcome is not None:
                    self.records[plan.dir_name] = rec


async def _prepare_agents(env: TrialEnv, cache_root: Path) -> Gateway | None:
    """Install what each variant's agent needs (once per block), then start the model gateway if an
    agent uses it; a gateway that does not start stops the job before any trial."""
    variants = env.config.variants
    for v in variants:
        await env.agents[v.name].install(v, cache_root, list(env.config.environment.ro_binds))
    through_gateway = [v for v in variants if env.agents[v.name].uses_gateway]
    if not through_gateway:
        return None
    return await Gateway(through_gateway).start(host_python=not env.environment_class().builds_images)


def run_job(setup: JobSetup, progress: ProgressCallback | None = None) -> JobOutcome:
    """Run a prepared job to the end; SIGINT/SIGTERM cancel it cleanly (raises JobCancelled)."""

    async def main() -> JobOutcome:
        loop = asyncio.get_running_loop()
        current = asyncio.current_task()
        assert current is not None
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, current.cancel)
        try:
            return await JobRunner(setup, progress).run()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)

    return asyncio.run(main())
