"""Run one trial: seed the workspace, run the agent, run the verifier, write ``trial.json``.

Outcome rules (documented for users in docs/outcomes.md):
- setup fails -> ``infra_error``; the agent raises -> ``agent_error``; the agent times
  out -> ``timeout`` (the verifier is not run);
- otherwise the verifier decides (``resolved``/``unresolved``/``verifier_error``/``timeout``),
  except that a non-zero agent exit with an unresolved verdict is an ``agent_error``;
- a hit step/cost limit is recorded in ``extra.limit`` and the verifier still grades;
- cancellation (Ctrl-C) -> ``cancelled``; such trials are re-run when the job resumes.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path

from trialbook import secrets
from trialbook.config import BlockConfig, VariantConfig, expand_env
from trialbook.jsonio import write_json
from trialbook.layout.paths import JobPaths, TrialPaths
from trialbook.model.outcome import Outcome
from trialbook.model.trial import ExceptionInfo, PhaseTiming, TrialRecord, utc_now
from trialbook.model.verdict import Verdict
from trialbook.run.agents.base import Agent, AgentContext, AgentResult
from trialbook.run.environments.base import Environment, EnvironmentSpec
from trialbook.run.environments.registry import environment_class
from trialbook.run.gateway.server import Gateway, TrialGateway
from trialbook.run.tasks import Task
from trialbook.sources.velora import model_key


@dataclass
class TrialPlan:
    """One (task, variant, attempt) of a job and the directory it writes."""

    task: Task
    variant: VariantConfig
    attempt: int
    dir_name: str


#: Called after the agent phase with (context, result); used to write trajectories.
AfterAgentHook = Callable[[AgentContext, AgentResult | None, TrialRecord], Awaitable[None] | None]


@dataclass
class TrialEnv:
    """Job-wide settings every trial shares."""

    job_name: str
    job: JobPaths
    config: BlockConfig
    scratch_root: Path
    agents: dict[str, Agent]
    after_agent: list[AfterAgentHook] = field(default_factory=list)
    #: The job's model gateway, when a variant's agent uses one (run/gateway).
    gateway: Gateway | None = None
    #: The environment class of ``config.environment`` (resolved once per job).
    environment: type[Environment] | None = None

    def environment_class(self) -> type[Environment]:
        if self.environment is None:
            self.environment = environment_class(self.config.environment)
        return self.environment


class _Phase:
    """Times one phase into ``record.timings[name]``."""

    def __init__(self, record: TrialRecord, name: str) -> None:
        self.record, self.name = record, name

    def __enter__(self) -> _Phase:
        self.t0 = time.monotonic()
        self.timing = PhaseTiming(started_at=utc_now())
        self.record.timings[self.name] = self.timing
        return self

    def __exit__(self, *exc: object) -> None:
        self.timing.finished_at = utc_now()
        self.timing.duration_s = round(time.monotonic() - self.t0, 3)


def _exception(exc: BaseException, phase: str) -> ExceptionInfo:
    return ExceptionInfo(
        type=type(exc).__name__,
        message=str(exc)[:2000],
        phase=phase,
        traceback="".join(traceback.format_exception(exc))[-8000:],
    )


def _write(paths: TrialPaths, record: TrialRecord) -> None:
    write_json(paths.trial_json, record.to_json_dict())


def new_record(env: TrialEnv, plan: TrialPlan) -> TrialRecord:
    return TrialRecord(
        trial_name=plan.dir_name,
        job=env.job_name,
        task=plan.task.name,
        variant=plan.variant.name,
        agent=plan.variant.agent,
        model=plan.variant.model,
        attempt=plan.attempt,
        started_at=utc_now(),
    )


#: Instructions up to this size are also in ``$TRIALBOOK_INSTRUCTION``; longer ones only in the file.
MAX_INSTRUCTION_ENV_BYTES = 64 * 1024

#: Files of ``agent/`` the host writes; a sandbox's file of the same name is not harvested over them.
HOST_AGENT_FILES = frozenset({"litellm-trajectory.jsonl", "trajectory.json", "stdout.txt", "stderr.txt",
                              "instruction.md"})


def _command_env(env: TrialEnv, plan: TrialPlan) -> dict[str, str]:
    """The variables every command of the trial gets (the config's, the variant's, trialbook's)."""
    cfg = env.config.environment
    variables = {k: expand_env(v) for k, v in cfg.env.items()}
    variables.update({k: expand_env(v) for k, v in plan.variant.env.items()})
    if len(plan.task.instruction.encode("utf-8")) <= MAX_INSTRUCTION_ENV_BYTES:
        variables["TRIALBOOK_INSTRUCTION"] = plan.task.instruction
    else:  # the kernel caps one argument at 128 KiB; long instructions are in the file only
        variables["TRIALBOOK_INSTRUCTION_IN_FILE_ONLY"] = "1"
    variables["TRIALBOOK_INSTRUCTION_FILE"] = "/logs/agent/instruction.md"
    variables["TRIALBOOK_TASK"] = plan.task.name
    # The VeloraHarness run interface's variables (its scripts build paths from them).
    variables["INSTANCE_ID"] = plan.task.name
    variables["MODEL_NAME"] = model_key(plan.variant.model) if plan.variant.model else plan.variant.name
    variables["RUN_NUMBER"] = str(plan.attempt)
    if plan.task.metadata.get("benchmark_type"):  # SWE-style tasks only: others have no benchmark type
        variables["BENCHMARK_TYPE"] = str(plan.task.metadata["benchmark_type"])
    return variables


def _environment(env: TrialEnv, plan: TrialPlan, scratch: Path) -> Environment:
    """The trial's environment, not started yet."""
    cls = env.environment_class()
    spec = EnvironmentSpec(
        job_name=env.job_name, trial_name=plan.dir_name, task_name=plan.task.name,
        task_dir=plan.task.source_dir, instruction=plan.task.instruction, config=env.config.environment,
        scratch=scratch, limits=env.config.environment.effective_limits(plan.task.limits),
        env=_command_env(env, plan), seed=plan.task.seed_workspace,
        image=plan.task.image_name, dockerfile=plan.task.dockerfile, seed_in_image=plan.task.seed_in_image,
    )
    return cls(spec)


async def _stoppable(work: Coroutine[object, object, AgentResult], environment: Environment,
                     timeout_s: float) -> AgentResult:
    """Run the agent; an environment that stops the phase over a limit (the watchdog) cancels it."""
    task = asyncio.ensure_future(work)
    tripped = False
    loop = asyncio.get_running_loop()

    def on_limit() -> None:
        nonlocal tripped
        tripped = True
        loop.call_soon_threadsafe(task.cancel)

    environment.on_limit = on_limit
    try:
        return await asyncio.wait_for(task, timeout=timeout_s)
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if not tripped or (current is not None and current.cancelling()):
            raise
        return AgentResult(exit_code=None)
    finally:
        environment.on_limit = None


def _note_output_cuts(environment: Environment, record: TrialRecord, phase: str) -> None:
    if environment.notes:
        record.extra.setdefault("sandbox_notes", []).extend(f"{phase}: {n}" for n in environment.notes[:20])
    environment.notes.clear()


async def _harvest(environment: Environment, src: str, dst: Path, record: TrialRecord, phase: str,
                   reserved: frozenset[str] = frozenset()) -> None:
    """Bring back what the environment left in ``src``; refusals are noted in the record."""
    notes = await environment.download(src, dst, reserved=reserved)
    if notes:
        record.extra.setdefault("sandbox_notes", []).extend(f"{phase}: {n}" for n in notes)


async def run_trial(env: TrialEnv, plan: TrialPlan, *, retries: int = 0) -> TrialRecord:
    """Run one trial from a clean directory and return its finished record."""
    paths = env.job.trial(plan.dir_name)
    if paths.dir.exists():
        shutil.rmtree(paths.dir)
    paths.agent_dir.mkdir(parents=True)
    paths.evaluation_dir.mkdir(parents=True)
    record = new_record(env, plan)
    record.retries = retries
    _write(paths, record)
    scratch = env.scratch_root / env.job_name / plan.dir_name
    t0 = time.monotonic()
    environment = _environment(env, plan, scratch)
    try:
        await _run_phases(env, plan, paths, environment, record)
    except asyncio.CancelledError:
        record.outcome = Outcome.CANCELLED
        record.reason = "cancelled by the user (Ctrl-C) or the runner"
        _record_environment(environment, record)
        _finish(paths, record, t0)
        raise
    finally:
        await environment.stop()
    _record_environment(environment, record)
    _finish(paths, record, t0)
    return record


def _record_environment(environment: Environment, record: TrialRecord) -> None:
    """``extra.environment``: what the environment tells of itself beyond its type (e.g. its image)."""
    if set(environment.info) - {"type"}:
        record.extra["environment"] = dict(environment.info)


def _scrub_trial_files(paths: TrialPaths) -> None:
    """Remove the run's secret values from every file of the trial, those the sandbox wrote included
    (an agent may print an environment variable it was given)."""
    if not secrets.current():
        return
    for p in sorted(paths.dir.rglob("*")):
        if p.name != "trial.json":
            secrets.scrub_file(p)


def _finish(paths: TrialPaths, record: TrialRecord, t0: float) -> None:
    _scrub_trial_files(paths)
    record.status = "finished"
    record.finished_at = utc_now()
    record.duration_s = round(time.monotonic() - t0, 3)
    _write(paths, record)


def _open_gateway(env: TrialEnv, agent: Agent, plan: TrialPlan, trial_id: str,
                  paths: TrialPaths) -> TrialGateway | None:
    """The trial's own key to the job's model gateway, for agents that use it."""
    if env.gateway is None or not agent.uses_gateway:
        return None
    step_limit, cost_limit = agent.gateway_limits(plan.variant)
    return env.gateway.open_trial(trial_id, plan.variant, paths.litellm_log,
                                  step_limit=step_limit, cost_limit=cost_limit)


async def _close_gateway(gateway: TrialGateway, result: AgentResult | None, record: TrialRecord) -> None:
    """Wait for the trial's last calls to reach its log, revoke its key, note a budget it hit."""
    state = await gateway.close()
    record.extra["gateway"] = {"calls": state.accepted, "logged": state.logged}
    if not gateway.gateway.running and record.outcome is None:  # the agent lost its model: not its fault
        record.outcome = Outcome.INFRA_ERROR
        record.reason = f"the model gateway (LiteLLM proxy) stopped during the trial: {gateway.gateway.log_tail(300)}"
        record.exception = ExceptionInfo(type="GatewayStopped", message=record.reason, phase="agent")
    if not state.settled:
        record.extra["gateway"]["warning"] = "some calls were not logged before the trial ended"
    if state.limit and result is not None and result.limit is None:
        result.limit = state.limit


async def _run_phases(env: TrialEnv, plan: TrialPlan, paths: TrialPaths, environment: Environment,
                      record: TrialRecord) -> None:
    agent = env.agents[plan.variant.name]
    trial_id = f"{env.job_name}/{plan.dir_name}"
    # What the agent phase gets beyond the task is given before the environment starts: a
    # container mounts host directories when it is made.
    gateway = _open_gateway(env, agent, plan, trial_id, paths)
    if gateway is not None:
        environment.add_agent_access(env=gateway.env(), ro_dirs=gateway.ro_dirs(), wrapper=gateway.wrapper())
    agent_dirs = agent.agent_dirs(plan.variant)
    if agent_dirs:
        environment.add_agent_access(ro_dirs=agent_dirs)
    try:
        await _setup_and_run(env, plan, paths, environment, record, gateway)
    finally:
        if gateway is not None:
            gateway.revoke()  # idempotent: after a setup failure the key is never used


async def _setup_and_run(env: TrialEnv, plan: TrialPlan, paths: TrialPaths, environment: Environment,
                         record: TrialRecord, gateway: TrialGateway | None) -> None:
    timeouts = env.config.timeouts
    task = plan.task
    agent = env.agents[plan.variant.name]
    trial_id = f"{env.job_name}/{plan.dir_name}"
    with _Phase(record, "environment_setup"):
        try:
            paths.instruction.write_text(task.instruction, encoding="utf-8")
            await environment.prepare()  # e.g. an image build: bounded by its own timeout
            await asyncio.wait_for(environment.start(), timeout=timeouts.environment_setup)
            if agent.needs_solution and task.solution_dir is not None and task.solution_dir.is_dir():
                await environment.upload(task.solution_dir, "/solution")
        except TimeoutError:
            record.outcome = Outcome.INFRA_ERROR
            record.reason = f"environment setup timed out after {timeouts.environment_setup:g}s"
            return
        except Exception as exc:  # noqa: BLE001 - any setup failure is an infra error
            record.outcome, record.exception = Outcome.INFRA_ERROR, _exception(exc, "environment_setup")
            record.reason = f"environment setup failed: {exc}"
            return

    agent_timeout = task.agent_timeout_s or timeouts.agent
    ctx = AgentContext(task=task, variant=plan.variant, paths=paths, environment=environment,
                       timeout_s=agent_timeout, trial_id=trial_id, attempt=plan.attempt, gateway=gateway)
    result: AgentResult | None = None
    with _Phase(record, "agent"):
        await environment.begin_phase("agent")
        try:
            result = await _stoppable(agent.run(ctx), environment, agent_timeout + 30)
        except TimeoutError:
            result = AgentResult(exit_code=None, timed_out=True)
        except Exception as exc:  # noqa: BLE001 - recorded as the trial's agent error
            record.outcome, record.exception = Outcome.AGENT_ERROR, _exception(exc, "agent")
            record.reason = f"agent failed: {type(exc).__name__}: {exc}"[:500]
        except BaseException:
            if gateway is not None:
                gateway.revoke()
            raise
        finally:
            over = await environment.end_phase()
            _record_limits(environment, record)
        if gateway is not None:
            await _close_gateway(gateway, result, record)
        _note_output_cuts(environment, record, "agent")
        if over and record.outcome is None:
            record.outcome, record.reason = Outcome.AGENT_ERROR, f"agent: {over}"
            record.exception = ExceptionInfo(type="ResourceLimitExceeded", message=record.reason, phase="agent")
    await _harvest(environment, "/logs/agent", paths.agent_dir, record, "agent", HOST_AGENT_FILES)
    if result is not None:
        record.usage = result.usage if result.usage and not result.usage.is_empty() else record.usage
        record.n_turns, record.n_tool_calls = result.n_turns, result.n_tool_calls
        record.extra["agent_exit_code"] = result.exit_code
        if result.limit:
            record.extra["limit"] = result.limit
        record.extra.update(result.extra)
    for hook in env.after_agent:
        maybe = hook(ctx, result, record)
        if asyncio.iscoroutine(maybe):
            await maybe
    if record.outcome is not None:
        return
    assert result is not None
    if result.timed_out:
        record.outcome = Outcome.TIMEOUT
        record.reason = f"agent timed out after {agent_timeout:g}s"
        record.exception = ExceptionInfo(type="AgentTimeoutError", message=record.reason, phase="agent")
        return

    verifier_timeout = task.verifier_timeout_s or timeouts.verifier
    with _Phase(record, "verifier"):
        try:
            planted = await environment.reset_dir("/logs/verifier")
            if planted:  # nothing the agent leaves can reach the verifier's directory; say so if tried
                record.extra["discarded_before_verifier"] = planted[:20]
            if task.tests_dir is not None and task.tests_dir.is_dir():
                await environment.upload(task.tests_dir, "/tests")
            await environment.begin_phase("verifier")
            try:
                verdict = await task.verify(paths, environment, verifier_timeout)
            finally:
                over = await environment.end_phase()
                _record_limits(environment, record)
            _note_output_cuts(environment, record, "verifier")
            if over:
                verdict = Verdict(outcome=Outcome.VERIFIER_ERROR, reason=f"verifier: {over}")
                record.exception = ExceptionInfo(type="ResourceLimitExceeded", message=verdict.reason or "",
                                                 phase="verifier")
        except Exception as exc:  # noqa: BLE001 - a broken verifier is the verifier's error
            verdict = Verdict(outcome=Outcome.VERIFIER_ERROR, reason=f"verifier failed: {exc}")
            record.exception = _exception(exc, "verifier")
        await _harvest(environment, "/logs/verifier", paths.verifier_dir, record, "verifier")
    write_json(paths.verdict, verdict.model_dump(mode="json"))
    record.outcome, record.reward, record.rewards = verdict.outcome, verdict.reward, verdict.rewards
    record.reason = verdict.reason
    if verdict.outcome == Outcome.TIMEOUT and record.exception is None:
        record.exception = ExceptionInfo(type="VerifierTimeoutError", message=verdict.reason or "",
                                         phase="verifier")
    if result.exit_code not in (0, None) and verdict.outcome == Outcome.UNRESOLVED:
        record.outcome = Outcome.AGENT_ERROR
        record.reason = f"agent exited with code {result.exit_code} and the task is unresolved"
        record.exception = ExceptionInfo(type="NonZeroAgentExitCodeError", message=record.reason,
                                         phase="agent")


def _record_limits(environment: Environment, record: TrialRecord) -> None:
    limits = environment.limits_record()
    if limits is not None:
        record.extra["limits"] = limits
