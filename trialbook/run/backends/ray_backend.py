"""The ``ray`` execution backend: each trial runs as a Ray task on any node of a cluster.

The driver (``trialbook run``) keeps the job's bookkeeping exactly as with the local backend;
only :func:`run_trial` moves. A trial task asks for the trial's CPUs and memory (its
effective limits: task.toml's request or the block's default, capped by ``max_limits``), runs
the trial in the node's sandbox and writes the trial directory where the job tree lives,
through a filesystem every node mounts at the same path. The driver writes a random token into
the job directory and each task checks it sees that token before it touches anything, so a
node without the shared filesystem fails clearly instead of writing trials nobody reads.

Trials lost with their node or worker process are re-submitted (``execution.max_retries``)
and count in ``trial.json`` ``retries``; Ctrl-C cancels the remote tasks (``ray.cancel``: the
trial records itself ``cancelled`` and stops its sandbox; one that does not stop within
:data:`CANCEL_GRACE_S` is killed and the driver records it).

Ray is an optional extra (``pip install 'trialbook[ray]'``), imported only here.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import os
import re
import secrets as tokens
import socket
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from trialbook import secrets
from trialbook.config import BlockConfig, ExecutionConfig
from trialbook.errors import ConfigError, ServiceUnavailableError, TrialbookError
from trialbook.jsonio import atomic_write_text, read_json, write_json
from trialbook.layout.paths import JobPaths
from trialbook.model.limits import human
from trialbook.model.outcome import Outcome
from trialbook.model.trial import ExceptionInfo, TrialRecord, utc_now
from trialbook.run.agents.base import Agent
from trialbook.run.trial import TrialEnv, TrialPlan, new_record, run_trial

if TYPE_CHECKING:
    from pathlib import Path

_log = logging.getLogger("trialbook.run")

#: Seconds a cancelled trial gets to record itself ``cancelled`` and stop its sandbox before its
#: worker process is killed (``ray.cancel(force=True)``).
CANCEL_GRACE_S = 15.0
#: Seconds the start-up check of every node (is the job directory visible there?) may take.
PROBE_TIMEOUT_S = 120.0

_VAR_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class JobDirNotShared(TrialbookError):
    """A Ray node does not see the job directory the driver writes (no shared filesystem there)."""


def import_ray() -> Any:
    """The ``ray`` module, or one clear line on how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError("execution.backend is ray but Ray is not installed; install it with "
                          "pip install 'trialbook[ray]'") from None
    return ray


def check_ray_job(config: BlockConfig, agents: dict[str, Agent], config_path: Path) -> None:
    """Refuse, at job start, what a Ray trial cannot do: no Ray installed, an agent that needs the
    model gateway (it listens on the driver's loopback, which other nodes cannot reach)."""
    try:
        import_ray()
    except ConfigError as exc:
        raise ConfigError(exc.message, config_path) from None
    for v in config.variants:
        if agents[v.name].uses_gateway:
            raise ConfigError(f"variant {v.name}: agent {v.agent} sends its model calls through the model "
                              "gateway, which runs on the driver machine only; use execution.backend local "
                              "for it", config_path)


def trial_resources(config: BlockConfig, plan: TrialPlan) -> dict[str, float | int]:
    """What the trial's Ray task asks for: ``num_cpus`` (its cpus limit, 1 when unset; above 1
    rounded up, Ray takes whole CPUs there) and ``memory`` (its memory limit in bytes, if set)."""
    limits = config.environment.effective_limits(plan.task.limits)
    cpus: float | int = 1 if limits.cpus is None else limits.cpus
    if cpus > 1:
        cpus = math.ceil(cpus)
    out: dict[str, float | int] = {"num_cpus": cpus}
    if limits.memory is not None:
        out["memory"] = limits.memory
    return out


def passed_environ(config: BlockConfig) -> dict[str, str]:
    """The driver's variables a trial reads: ``${VAR}``s of ``env:`` values and ``api_key_env``s
    (a node's own environment does not hold what the user exported where they ran trialbook)."""
    names: set[str] = set()
    for value in [*config.environment.env.values(), *(x for v in config.variants for x in v.env.values())]:
        names.update(_VAR_REF.findall(value))
    names.update(v.api_key_env for v in config.variants if v.api_key_env)
    return {n: os.environ[n] for n in sorted(names) if n in os.environ}


def _node_name() -> str:
    try:
        import ray

        where = ray.util.get_node_ip_address()
        if ray.is_initialized():  # (outside a Ray worker, asking for the node id would start a local Ray)
            where += f", node {ray.get_runtime_context().get_node_id()[:12]}"
    except Exception:  # noqa: BLE001 - only a label for messages
        where = "?"
    return f"{socket.gethostname()} ({where})"


def _check_visible(probe: Path, token: str) -> str | None:
    """None when this node sees the driver's token in the job directory, else why not."""
    try:
        seen = probe.read_text(encoding="utf-8").strip()
    except OSError as exc:
        seen = f"<{type(exc).__name__}>"
    if seen == token:
        return None
    return (f"the job directory {probe.parent} is not visible on Ray node {_node_name()}: the ray backend "
            "writes each trial there, through a filesystem every node mounts at the same path")


def _probe_node(probe: Path, token: str) -> str | None:
    """Run on one node at job start (see :meth:`RayBackend.start`)."""
    return _check_visible(probe, token)


def _trial_in_worker(env: TrialEnv, plan: TrialPlan, retries: int, token: str, secret_values: list[str],
                     environ: dict[str, str], lost: list[str]) -> TrialRecord:
    """The body of a trial's Ray task: check the shared job directory, then :func:`run_trial`."""
    problem = _check_visible(env.job.execution_probe, token)
    if problem:
        raise JobDirNotShared(problem)
    secrets.register(secret_values)  # every file the trial writes is scrubbed as on the driver
    os.environ.update(environ)
    loop = asyncio.new_event_loop()
    task = loop.create_task(run_trial(env, plan, retries=retries))
    try:
        record = loop.run_until_complete(task)
    except KeyboardInterrupt:  # ray.cancel(): the trial records itself cancelled and stops its sandbox
        task.cancel()
        with contextlib.suppress(BaseException):
            loop.run_until_complete(task)
        raise
    finally:
        loop.close()
    record.extra["execution"] = {"backend": "ray", "node": _node_name(), **({"lost": lost} if lost else {})}
    write_json(env.job.trial(plan.dir_name).trial_json, record.to_json_dict())
    return record


class _NoSigtermNotice(logging.Filter):
    """Ray warns that it sets no SIGTERM handler off the main thread: the runner handles SIGTERM."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "SIGTERM handler is not set" not in record.getMessage()


_SIGTERM_NOTICE = _NoSigtermNotice()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


class RayBackend:
    """Runs each trial as a Ray task; one instance serves one run of one job."""

    def __init__(self, execution: ExecutionConfig, job: JobPaths) -> None:
        self.execution = execution
        self.job = job
        self._ray: Any = None
        self._owns_connection = False
        self._token = ""
        self._env_ref: Any = None
        self._remote: Any = None
        self._secrets: list[str] = []
        self._environ: dict[str, str] = {}

    # -- start / stop ------------------------------------------------------------------
    async def start(self, env: TrialEnv, todo: list[TrialPlan]) -> None:
        """Connect to the cluster, then check every node sees the job directory and some node
        can hold each trial's request (a job that would wait forever fails now, in one line)."""
        self._ray = import_ray()
        try:
            await asyncio.to_thread(self._connect)
            self._token = tokens.token_hex(16)
            atomic_write_text(self.job.execution_probe, self._token + "\n")
            self._env_ref = self._ray.put(dataclasses.replace(env, gateway=None))
            self._remote = self._ray.remote(_trial_in_worker)
            self._secrets = list(secrets.current().values)
            self._environ = passed_environ(env.config)
            await asyncio.to_thread(self._check_cluster, env.config, todo)
        except BaseException:
            await self.stop()
            raise

    def _connect(self) -> None:
        """``ray.init`` (in a worker thread, so Ray leaves the runner's SIGINT/SIGTERM handling alone)."""
        ray = self._ray
        logging.getLogger("ray._private.worker").addFilter(_SIGTERM_NOTICE)
        if ray.is_initialized():  # the caller's own connection (a notebook, a test) is used as it is
            return
        address = self.execution.address
        try:
            quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
            if address == "local":
                ray.init(include_dashboard=False, **quiet)
            else:
                ray.init(address=address, **quiet)
        except Exception as exc:  # noqa: BLE001 - Ray raises several types for "no cluster there"
            hint = (" (no running cluster found: start one with `ray start --head`, or set "
                    "execution.address: local)" if address == "auto" else "")
            raise ServiceUnavailableError(f"execution.address {address}: cannot connect to Ray: "
                                          f"{_first_line(exc)}{hint}") from None
        self._owns_connection = True

    def _check_cluster(self, config: BlockConfig, todo: list[TrialPlan]) -> None:
        ray = self._ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        nodes = [n for n in ray.nodes() if n.get("Alive")]
        probe = ray.remote(_probe_node)
        refs = [probe.options(num_cpus=0, max_retries=0, scheduling_strategy=NodeAffinitySchedulingStrategy(
            n["NodeID"], soft=False)).remote(self.job.execution_probe, self._token) for n in nodes]
        problems = []
        for ref in refs:
            try:
                problem = ray.get(ref, timeout=PROBE_TIMEOUT_S)
            except ray.exceptions.GetTimeoutError:
                problem = f"a Ray node did not answer in {PROBE_TIMEOUT_S:g}s whether it sees the job directory"
            except ray.exceptions.RayTaskError as exc:  # e.g. trialbook is not installed on that node
                problem = f"a Ray node cannot run trialbook's code: {_first_line(exc.cause or exc)}"
            except ray.exceptions.RayError:
                continue  # the node died meanwhile: it runs no trial either
            if problem:
                problems.append(problem)
        if problems:
            raise JobDirNotShared(f"{len(problems)} of {len(nodes)} Ray nodes cannot run this job's trials: "
                                  f"{problems[0]}")
        capacity = [(n["Resources"].get("CPU", 0.0), n["Resources"].get("memory", 0.0)) for n in nodes]
        for plan in todo:
            want = trial_resources(config, plan)
            if not any(cpu >= want["num_cpus"] and mem >= want.get("memory", 0) for cpu, mem in capacity):
                cpu, mem = max(capacity, default=(0.0, 0.0))
                raise ConfigError(
                    f"task {plan.task.name}: a trial asks for {want['num_cpus']} CPUs"
                    f"{' and ' + human(int(want['memory'])) + ' of memory' if 'memory' in want else ''}, "
                    f"which no node of the Ray cluster has (the largest: {cpu:g} CPUs, {human(int(mem))}); "
                    "lower environment.limits / max_limits or add a bigger node")

    async def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.job.execution_probe.unlink()
        if self._owns_connection and self._ray is not None:
            self._owns_connection = False
            await asyncio.to_thread(self._ray.shutdown)

    # -- one trial ---------------------------------------------------------------------
    async def run(self, env: TrialEnv, plan: TrialPlan, *, retries: int) -> TrialRecord:
        ray = self._ray
        options = {**trial_resources(env.config, plan), "max_retries": 0, "retry_exceptions": False,
                   "name": f"trialbook trial {plan.dir_name}"}
        lost: list[str] = []
        while True:
            tries = retries + len(lost)
            ref = self._remote.options(**options).remote(self._env_ref, plan, tries, self._token, self._secrets,
                                                         self._environ, lost)
            try:
                return await asyncio.wrap_future(ref.future())
            except asyncio.CancelledError:
                # The scheduler cancels every trial again while it waits for them: the clean-up runs
                # in its own task, shielded, so the trial always ends up recorded.
                cleanup = asyncio.ensure_future(self._cancel(ref, env, plan, tries))
                while not cleanup.done():
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.shield(cleanup)
                raise
            except ray.exceptions.TaskCancelledError:  # cancelled from outside (the dashboard, `ray job stop`)
                return self._driver_record(env, plan, tries, Outcome.CANCELLED, "the trial's Ray task was "
                                           "cancelled outside trialbook", "TaskCancelledError", lost)
            except ray.exceptions.RayTaskError as exc:  # the task itself raised: no node was lost
                cause = exc.cause if exc.cause is not None else exc
                reason = str(cause) if isinstance(cause, JobDirNotShared) else \
                    f"the trial failed on its Ray node: {_first_line(cause)}"
                return self._driver_record(env, plan, tries, Outcome.INFRA_ERROR, reason, type(cause).__name__,
                                           lost)
            except ray.exceptions.RayError as exc:  # its worker process or node died
                lost.append(_first_line(exc))
                if len(lost) > self.execution.max_retries:
                    return self._driver_record(
                        env, plan, tries, Outcome.INFRA_ERROR,
                        f"the trial's Ray worker or node was lost {len(lost)} times (execution.max_retries "
                        f"{self.execution.max_retries}); last: {lost[-1]}", type(exc).__name__, lost)
                _log.warning("trial %s: lost with its Ray worker or node (%s); running it again", plan.dir_name,
                             lost[-1])

    async def _cancel(self, ref: Any, env: TrialEnv, plan: TrialPlan, tries: int) -> None:
        """Cancel a remote trial; make sure a started one ends up recorded ``cancelled``."""
        ray = self._ray
        with contextlib.suppress(Exception):
            ray.cancel(ref)  # KeyboardInterrupt in the task: the trial writes its cancelled record
        try:
            await asyncio.wait_for(asyncio.wrap_future(ref.future()), CANCEL_GRACE_S)
        except TimeoutError:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)  # kills the worker; the sandbox dies with it (--die-with-parent)
        except Exception:  # noqa: BLE001, S110 - any end is fine here: the record is checked below
            pass
        path = env.job.trial(plan.dir_name).trial_json
        if not path.exists():
            return  # never started on a node: runs on resume like any trial not started
        try:
            rec = TrialRecord.model_validate(read_json(path))
        except (TrialbookError, ValidationError):
            rec = None
        if rec is None or rec.status != "finished":
            self._driver_record(env, plan, tries, Outcome.CANCELLED, "cancelled by the user (Ctrl-C) or the "
                                "runner; its Ray task was stopped", None, [], started=rec)

    def _driver_record(self, env: TrialEnv, plan: TrialPlan, tries: int, outcome: Outcome, reason: str,
                       exc_type: str | None, lost: list[str], started: TrialRecord | None = None) -> TrialRecord:
        """A trial's record written by the driver, when no node could write it."""
        paths = env.job.trial(plan.dir_name)
        rec = started or new_record(env, plan)
        rec.retries = tries
        rec.outcome, rec.reason = outcome, reason
        if exc_type:
            rec.exception = ExceptionInfo(type=exc_type, message=reason, phase="environment_setup")
        rec.extra["execution"] = {"backend": "ray", **({"lost": lost} if lost else {})}
        rec.status = "finished"
        rec.finished_at = utc_now()
        paths.dir.mkdir(parents=True, exist_ok=True)
        write_json(paths.trial_json, rec.to_json_dict())
        return rec
