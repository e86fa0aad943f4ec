"""mini-swe-agent's own loop, wired to trialbook: its LiteLLM model, our environment, our log.

Imported lazily by :mod:`trialbook.run.agents.miniswe` (mini-swe-agent and LiteLLM take
seconds to import). The pieces are thin subclasses of mini-swe-agent's classes:

* :class:`SandboxToolCallModel` / :class:`SandboxTextModel` call ``litellm.completion`` with the
  trial's logger metadata, ``api_base`` and API key, one attempt per call (so every retry is a
  line in the log) under our own retry policy, and never fail on an unpriced model unless asked;
* :class:`SandboxEnvironment` runs each command with ``bash -c`` in the trial's
  :class:`~trialbook.run.environments.base.Environment` (a bubblewrap sandbox, a container), on
  the trial's event loop, killing everything it started on timeout or stop;
* :class:`SandboxAgent` is ``DefaultAgent`` that saves its native trajectory (scrubbed) to the
  trial's ``agent/`` directory and stops promptly when asked (timeout, Ctrl-C).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import platform
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import litellm  # noqa: E402
from minisweagent import __version__ as MINI_SWE_AGENT_VERSION  # noqa: E402
from minisweagent.agents.default import DefaultAgent  # noqa: E402
from minisweagent.config import get_config_from_spec  # noqa: E402
from minisweagent.environments.local import LocalEnvironment, LocalEnvironmentConfig  # noqa: E402
from minisweagent.exceptions import FormatError, InterruptAgentFlow  # noqa: E402
from minisweagent.models.litellm_model import LitellmModel  # noqa: E402
from minisweagent.models.litellm_textbased_model import LitellmTextbasedModel  # noqa: E402
from minisweagent.models.utils.actions_toolcall import BASH_TOOL  # noqa: E402
from minisweagent.utils.serialize import recursive_merge  # noqa: E402
from tenacity import (  # noqa: E402
    RetryCallState,
    Retrying,
    retry_if_not_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from trialbook.jsonio import write_json  # noqa: E402
from trialbook.run import upstream  # sets what LiteLLM and mini-swe-agent read at import
from trialbook.run.environments.base import Environment  # noqa: E402
from trialbook.run.llm_log import TrialLog, open_trial_log, scrub  # noqa: E402

__all__ = ["MINI_SWE_AGENT_VERSION", "MiniSweLoop", "build_loop", "open_trial_log"]

log = logging.getLogger("trialbook.miniswe")

class StopRequested(InterruptAgentFlow):
    """Ends the loop at the next step boundary (timeout or cancellation), recorded as its exit status."""

    def __init__(self, reason: str) -> None:
        super().__init__({"role": "exit", "content": reason,
                          "extra": {"exit_status": reason, "submission": ""}})


class StopSignal:
    """Set from the event loop, checked by the worker thread before every model call and command."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason = ""

    def set(self, reason: str) -> None:
        self.reason = self.reason or reason
        self.event.set()

    def check(self) -> None:
        if self.event.is_set():
            raise StopRequested(self.reason)


@dataclass
class ModelRuntime:
    """What a model call needs besides mini-swe-agent's config (kept out of it: never serialised)."""

    trial_log: TrialLog
    stop: StopSignal
    deadline: float
    api_base: str | None = None
    api_key: str | None = None
    request_timeout_s: float = 600.0
    retry_attempts: int = 5
    retry_wait_s: float = 2.0


def _dump(response: Any) -> Any:
    """The response as JSON data; its repr when the provider object refuses (it must be kept)."""
    try:
        return response.model_dump(mode="json")
    except Exception:  # noqa: BLE001 - mini-swe-agent's contract: the response is always persisted
        return repr(response)


class _TrialbookModel:
    """Overrides shared by the tool-call and text models (mixed in before mini-swe-agent's class)."""

    uses_tools: bool = True
    rt: ModelRuntime
    config: Any
    abort_exceptions: list[type[BaseException]]
    n_queries: int = 0

    def _query(self, messages: list[dict[str, Any]], **kwargs: Any) -> Any:
        call: dict[str, Any] = {**self.config.model_kwargs, **kwargs}
        remaining = max(1.0, self.rt.deadline - time.monotonic())
        call.update(
            model=self.config.model_name,
            messages=messages,
            metadata=self.rt.trial_log.call_metadata(step=self.n_queries),
            max_retries=0,
            timeout=min(self.rt.request_timeout_s, remaining),
        )
        if self.uses_tools:
            call["tools"] = [BASH_TOOL]
            upstream.skip_mcp(call)
        if self.rt.api_base:
            call["api_base"] = self.rt.api_base
        if self.rt.api_key:
            call["api_key"] = self.rt.api_key
        return litellm.completion(**call)

    def query(self, messages: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
        """mini-swe-agent's ``query`` with our retry policy (one logged line per attempt)."""
        self.n_queries += 1
        prepared = upstream.prepare_messages(self, messages)
        response = None
        for attempt in self._retrying():
            with attempt:
                self.rt.stop.check()
                response = self._query(prepared, **kwargs)
        cost_output = self._calculate_cost(response)
        try:
            actions = upstream.parse_actions(self, response)
        except FormatError as e:
            e.messages[0]["extra"].update(cost_output)
            e.messages[0]["extra"]["response"] = _dump(response)
            raise
        message = response.choices[0].message.model_dump()
        message["extra"] = {"actions": actions, "response": _dump(response),
                            **cost_output, "timestamp": time.time()}
        return message

    def _retrying(self) -> Retrying:
        """Our retry policy: ``retry_attempts`` tries, exponential waits with full jitter from
        ``retry_wait_s`` (at most a minute), cut short by a stop; mini-swe-agent's abort errors and a
        stop are never retried."""
        def warn(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning("model call failed (%s: %s); retry %d/%d in %.1fs", type(exc).__name__, str(exc)[:200],
                        state.attempt_number, self.rt.retry_attempts - 1,
                        state.next_action.sleep if state.next_action else 0.0)

        return Retrying(
            stop=stop_after_attempt(self.rt.retry_attempts),
            wait=wait_random_exponential(multiplier=self.rt.retry_wait_s, max=60.0),
            retry=retry_if_not_exception_type((StopRequested, *self.abort_exceptions)),
            sleep=self.rt.stop.event.wait,
            before_sleep=warn,
            reraise=True,
        )

    def _calculate_cost(self, response: Any) -> dict[str, float]:
        """LiteLLM's price of the call; an unpriced model costs 0 unless ``cost_tracking: default``."""
        cost = upstream.hidden_response_cost(response)
        if not isinstance(cost, int | float) or cost <= 0:
            try:
                cost = litellm.cost_calculator.completion_cost(response, model=self.config.model_name)
            except Exception:  # noqa: BLE001 - unknown model: handled below
                cost = None
        if not isinstance(cost, int | float) or cost <= 0:
            if self.config.cost_tracking != "ignore_errors":
                raise RuntimeError(
                    f"cannot price model {self.config.model_name}; set settings.cost_tracking: "
                    "ignore_errors, or give model_kwargs input_cost_per_token/output_cost_per_token"
                )
            cost = 0.0
        return {"cost": float(cost)}


class SandboxToolCallModel(_TrialbookModel, LitellmModel):
    """mini-swe-agent's tool-calling LiteLLM model (one ``bash`` tool)."""

    uses_tools = True

    def __init__(self, *, runtime: ModelRuntime, **kwargs: Any) -> None:
        LitellmModel.__init__(self, **kwargs)
        self.rt = runtime


class SandboxTextModel(_TrialbookModel, LitellmTextbasedModel):
    """mini-swe-agent's text model: one command per reply in a fenced ``mswea_bash_command`` block."""

    uses_tools = False

    def __init__(self, *, runtime: ModelRuntime, **kwargs: Any) -> None:
        LitellmTextbasedModel.__init__(self, **kwargs)
        self.rt = runtime


class SandboxEnvironmentConfig(LocalEnvironmentConfig):
    """``cwd`` is a path inside the sandbox; ``env`` is added to the sandbox's environment."""

    cwd: str = "/app"
    timeout: float = 60.0  # type: ignore[assignment]


def _read_kept(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


class SandboxEnvironment(LocalEnvironment):
    """Runs each action with ``bash -c`` in the trial's environment, never on the host.

    mini-swe-agent calls :meth:`execute` from its own thread; the command runs on the trial's
    event loop (``environment.exec``), its output kept up to ``limits.output`` in a private host
    file. :meth:`kill` cancels it there, which kills everything the command started.
    """

    def __init__(self, *, environment: Environment, loop: asyncio.AbstractEventLoop, stop: StopSignal,
                 **kwargs: Any) -> None:
        super().__init__(config_class=SandboxEnvironmentConfig, **kwargs)
        self.environment, self.loop, self.stop = environment, loop, stop
        self._running: concurrent.futures.Future[Any] | None = None
        self._lock = threading.Lock()

    def execute(self, action: dict, cwd: str = "", *, timeout: int | None = None) -> dict[str, Any]:
        self.stop.check()
        command = str(action.get("command", ""))
        limit = float(timeout or self.config.timeout)
        with tempfile.TemporaryDirectory(prefix="trialbook-cmd-") as tmp:
            out_path = Path(tmp) / "output.txt"
            work = self.environment.exec(["bash", "-c", command], timeout_s=limit, stdout_path=out_path,
                                         workdir=cwd or self.config.cwd or "/app", env=dict(self.config.env))
            future = asyncio.run_coroutine_threadsafe(work, self.loop)
            with self._lock:
                self._running = future
            try:
                res = future.result()
                output: dict[str, Any] = {"output": _read_kept(out_path), "returncode": res.exit_code,
                                          "exception_info": ""}
                if res.timed_out:
                    output.update(returncode=-1,
                                  exception_info=f"The command timed out after {limit:g}s; its processes were killed.",
                                  extra={"exception_type": "TimeoutExpired"})
            except concurrent.futures.CancelledError:
                output = {"output": _read_kept(out_path), "returncode": -1, "exception_info": ""}
            finally:
                with self._lock:
                    self._running = None
        if self.stop.event.is_set():
            output["exception_info"] = f"The command was stopped ({self.stop.reason})."
        upstream.check_finished(self, output)
        return output

    def kill(self) -> None:
        """Kill the command running now, if any (called from another thread)."""
        with self._lock:
            future = self._running
        if future is not None:
            future.cancel()

    def get_template_vars(self, **kwargs: Any) -> dict[str, Any]:
        # Unlike LocalEnvironment, no host environment variables: templates must not see secrets.
        return recursive_merge(self.config.model_dump(), platform.uname()._asdict(), kwargs)


class SandboxAgent(DefaultAgent):
    """``DefaultAgent`` that stops on request and saves its trajectory scrubbed to a fixed file."""

    def __init__(self, model: Any, env: Any, *, traj_path: Path, secrets: list[str], stop: StopSignal,
                 **kwargs: Any) -> None:
        super().__init__(model, env, **kwargs)
        self.traj_path, self.secrets, self.stop = traj_path, secrets, stop

    def step(self) -> list[dict]:
        self.stop.check()
        return super().step()

    def save(self, path: Path | None, *extra_dicts: dict) -> dict:
        """Write the native ``.traj.json`` (``path`` is ignored: it always goes to the trial's file)."""
        data = self.serialize(*extra_dicts)
        write_json(self.traj_path, scrub(data, self.secrets))
        return data


@dataclass
class MiniSweLoop:
    """One trial's agent, model and environment, plus the stop switch the event loop uses."""

    agent: SandboxAgent
    model: _TrialbookModel
    env: SandboxEnvironment
    stop_signal: StopSignal

    def run(self, task: str) -> dict[str, Any]:
        """Run mini-swe-agent's loop to its end (blocking); returns its exit info."""
        return self.agent.run(task)

    def stop(self, reason: str) -> None:
        """Ask the loop to end now: kills the running command; the loop exits at the next check."""
        self.stop_signal.set(reason)
        self.env.kill()


def _section(config: dict[str, Any], name: str) -> dict[str, Any]:
    value = config.get(name)
    return dict(value) if isinstance(value, dict) else {}


def build_loop(*, settings: Any, model_name: str, environment: Environment, loop: asyncio.AbstractEventLoop,
               trial_log: TrialLog,
               traj_path: Path, deadline: float, api_base: str | None = None,
               api_key: str | None = None) -> MiniSweLoop:
    """Assemble the loop from a mini-swe-agent config file (built-in or path) and the variant settings."""
    base = get_config_from_spec(settings.config or ("mini" if settings.mode == "tool_calls" else "default"))
    agent_cfg = _section(base, "agent")
    for key in ("system_template", "instance_template"):
        if getattr(settings, key):
            agent_cfg[key] = getattr(settings, key)
    agent_cfg.update(step_limit=settings.step_limit, cost_limit=settings.cost_limit,
                     max_consecutive_format_errors=settings.max_consecutive_format_errors,
                     wall_time_limit_seconds=0, output_path=None)
    agent_cfg.pop("mode", None)

    model_cfg = _section(base, "model")
    for key in ("model_class", "model_name"):
        model_cfg.pop(key, None)
    for key in ("observation_template", "format_error_template"):
        if getattr(settings, key):
            model_cfg[key] = getattr(settings, key)
    model_cfg["model_kwargs"] = {**_section(model_cfg, "model_kwargs"), **settings.model_kwargs}
    model_cfg["cost_tracking"] = settings.cost_tracking

    env_cfg = {"env": {str(k): str(v) for k, v in _section(_section(base, "environment"), "env").items()},
               "timeout": settings.command_timeout_s, "cwd": "/app"}

    stop = StopSignal()
    runtime = ModelRuntime(trial_log=trial_log, stop=stop, deadline=deadline, api_base=api_base,
                           api_key=api_key, request_timeout_s=settings.request_timeout_s,
                           retry_attempts=settings.retry_attempts, retry_wait_s=settings.retry_wait_s)
    model_cls = SandboxToolCallModel if settings.mode == "tool_calls" else SandboxTextModel
    model = model_cls(runtime=runtime, model_name=model_name, **model_cfg)
    env = SandboxEnvironment(environment=environment, loop=loop, stop=stop, **env_cfg)
    secrets = [s for s in (api_key,) if s]
    agent = SandboxAgent(model, env, traj_path=traj_path, secrets=secrets, stop=stop, **agent_cfg)
    return MiniSweLoop(agent=agent, model=model, env=env, stop_signal=stop)
