"""Agent ``mini-swe-agent``: mini-swe-agent's loop, LiteLLM for the model, our sandbox for commands.

The loop is synchronous, so it runs in a daemon worker thread while the trial's coroutine
waits on it. On the trial's agent timeout or on cancellation (Ctrl-C) the running sandbox
command is killed (whole process tree) and the loop stops at its next step; an HTTP request
in flight is bounded by ``request_timeout_s`` and the time left. Step and cost limits end the
run as a recorded ``limit``, not an error, and the verifier still grades the workspace.

Every model call is a line of ``agent/litellm-trajectory.jsonl`` (see :mod:`trialbook.run.llm_log`);
mini-swe-agent's own trajectory is kept as ``agent/mini-swe-agent.traj.json``. Variant settings
are documented in ``docs/llm-agents.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import threading
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from trialbook.config import VariantConfig
from trialbook.errors import ConfigError
from trialbook.model.litellm_line import read_litellm_log, usage_from_lines
from trialbook.run.agents.base import Agent, AgentContext, AgentResult, register_agent
from trialbook.run.agents.endpoint import check_endpoint, parse_variant_settings
from trialbook.run.agents.endpoint import variant_api_key as _api_key

NATIVE_TRAJECTORY = "mini-swe-agent.traj.json"
#: How long a stopped loop gets to save its trajectory before the trial moves on.
STOP_GRACE_S = 10.0


class MiniSweSettings(BaseModel):
    """The ``settings:`` of a ``mini-swe-agent`` variant."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["tool_calls", "text"] = Field(
        default="tool_calls",
        description="tool_calls: the model calls a `bash` tool; text: one ```mswea_bash_command block per reply",
    )
    config: str | None = Field(
        default=None,
        description="mini-swe-agent config to start from: a built-in name (mini, default, swebench) or a "
        "path; default `mini` (tool_calls) or `default` (text)",
    )
    step_limit: int = Field(default=50, ge=0, description="Model calls before the run stops (0 = no limit)")
    cost_limit: float = Field(default=3.0, ge=0, description="USD spent before the run stops (0 = no limit)")
    command_timeout_s: float = Field(default=60.0, gt=0, description="Timeout of one sandbox command")
    request_timeout_s: float = Field(default=600.0, gt=0, description="Timeout of one model request")
    retry_attempts: int = Field(default=5, ge=1, description="Attempts per model query (HTTP errors are retried)")
    retry_wait_s: float = Field(default=2.0, ge=0, description="Scale of the waits between attempts: random up to this times 2^n, at most 60 s")
    max_consecutive_format_errors: int = Field(default=3, ge=0, description="Malformed replies in a row before exit")
    cost_tracking: Literal["default", "ignore_errors"] = Field(
        default="ignore_errors", description="ignore_errors: an unpriced model costs 0 instead of failing"
    )
    model_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Extra litellm.completion arguments (temperature, max_tokens, pricing)"
    )
    system_template: str | None = None
    instance_template: str | None = None
    observation_template: str | None = None
    format_error_template: str | None = None


def parse_settings(variant: VariantConfig) -> MiniSweSettings:
    """The variant's settings, validated; a problem is a ConfigError naming the variant."""
    return parse_variant_settings(MiniSweSettings, variant, variant.settings)


@register_agent
class MiniSweAgent(Agent):
    """mini-swe-agent's ``DefaultAgent`` with a LiteLLM model, run in the trial's sandbox."""

    name = "mini-swe-agent"
    native_log = NATIVE_TRAJECTORY

    def check(self, variant: VariantConfig) -> None:
        if not variant.model:
            raise ConfigError(f"variant {variant.name}: the mini-swe-agent agent needs `model:` "
                              "(a LiteLLM model string such as openai/gpt-4o-mini)")
        parse_settings(variant)
        _api_key(variant)

    def preflight(self, variant: VariantConfig) -> None:
        check_endpoint(variant.name, variant.api_base, _api_key(variant))

    async def run(self, ctx: AgentContext) -> AgentResult:
        settings = parse_settings(ctx.variant)
        api_key = _api_key(ctx.variant)
        assert ctx.variant.model is not None
        loop_mod = await asyncio.to_thread(importlib.import_module, "trialbook.run.agents.miniswe_loop")
        trial_log = loop_mod.open_trial_log(ctx.trial_id, ctx.paths.litellm_log, secrets=[api_key] if api_key else [])
        aloop = asyncio.get_running_loop()
        runner = loop_mod.build_loop(
            settings=settings, model_name=ctx.variant.model, environment=ctx.environment, loop=aloop,
            trial_log=trial_log, traj_path=ctx.paths.agent_dir / NATIVE_TRAJECTORY,
            deadline=time.monotonic() + ctx.timeout_s, api_base=ctx.variant.api_base, api_key=api_key,
        )
        done: asyncio.Future[dict[str, Any]] = aloop.create_future()

        def deliver(ok: bool, value: Any) -> None:
            if not done.done():
                done.set_result(value) if ok else done.set_exception(value)

        def work() -> None:
            try:
                ok, value = True, runner.run(ctx.task.instruction)
            except BaseException as exc:  # noqa: BLE001 - handed to the trial's coroutine
                ok, value = False, exc
            with contextlib.suppress(RuntimeError):  # the event loop is gone (interpreter exiting)
                aloop.call_soon_threadsafe(deliver, ok, value)

        thread = threading.Thread(target=work, name=f"mini-swe-agent:{ctx.trial_id}", daemon=True)
        thread.start()
        timed_out = False
        try:
            try:
                info = await asyncio.wait_for(asyncio.shield(done), timeout=ctx.timeout_s)
            except TimeoutError:
                timed_out = True
                runner.stop("Timeout")
                await asyncio.wait({done}, timeout=STOP_GRACE_S)
                info = done.result() if done.done() and done.exception() is None else {"exit_status": "Timeout"}
        except asyncio.CancelledError:
            runner.stop("Cancelled")
            await asyncio.wait({done}, timeout=STOP_GRACE_S)
            raise
        finally:
            await asyncio.to_thread(trial_log.wait_flushed, 10.0)
            trial_log.close()
        return self._result(ctx, settings, runner, info, timed_out, loop_mod.MINI_SWE_AGENT_VERSION)

    @staticmethod
    def _result(ctx: AgentContext, settings: MiniSweSettings, runner: Any, info: dict[str, Any],
                timed_out: bool, version: str) -> AgentResult:
        lines = read_litellm_log(ctx.paths.litellm_log, ctx.trial_id) if ctx.paths.litellm_log.exists() else []
        ok = [ln for ln in lines if ln.status == "success"]
        exit_status = str(info.get("exit_status") or "")
        limit = None
        if exit_status == "LimitsExceeded":
            n_calls = runner.agent.n_calls
            limit = "step_limit" if 0 < settings.step_limit <= n_calls else "cost_limit"
        if timed_out:
            exit_code = None
        else:
            exit_code = 0 if exit_status in ("Submitted", "LimitsExceeded") else 1
        return AgentResult(
            exit_code=exit_code,
            timed_out=timed_out,
            limit=limit,
            usage=usage_from_lines(lines) if lines else None,
            n_turns=len(ok),
            n_tool_calls=sum(len(ln.response.tool_calls or []) for ln in ok if ln.response),
            extra={
                "exit_status": exit_status,
                "mini_swe_agent_version": version,
                "llm_call_failures": len(lines) - len(ok),
            },
        )
