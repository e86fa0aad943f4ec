"""Agents that are command-line programs: ``cli`` (any CLI, from ``install:``/``run:`` templates),
``claude-code`` and ``codex`` (the same with their npm packages and command lines filled in).

Their model calls go through the job's model gateway (run/gateway): the sandbox gets
``OPENAI_BASE_URL``/``OPENAI_API_KEY`` and ``ANTHROPIC_BASE_URL``/``ANTHROPIC_API_KEY``
pointing at it with the trial's own key, so every call is a line of the trial's
``agent/litellm-trajectory.jsonl`` whatever the program is. The program is installed once per
block (install.py) and mounted read-only into trials. Settings are documented in docs/agents.md.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from trialbook.config import VariantConfig
from trialbook.errors import ConfigError
from trialbook.run.agents import install as installer
from trialbook.run.agents.base import Agent, AgentContext, AgentResult, register_agent
from trialbook.run.agents.endpoint import check_endpoint, parse_variant_settings
from trialbook.run.agents.endpoint import variant_api_key as _api_key
from trialbook.run.agents.simple import _command_record, _tail

LOGS_DIR = "/logs/agent"
_PLACEHOLDER = re.compile(r"(?<!\$)\{(instruction|model|version|agent_dir|logs_dir)\}")


class CliSettings(BaseModel):
    """The ``settings:`` of a ``cli``, ``claude-code`` or ``codex`` variant."""

    model_config = ConfigDict(extra="forbid")

    version: str | None = Field(default=None, description="The program's version, `{version}` in the templates; "
                                "recorded in trial.json (required by claude-code and codex)")
    install: str | None = Field(default=None, description="Shell script installing the program into "
                                "$TRIALBOOK_AGENT_DIR, once per block, with the network on")
    run: str | None = Field(default=None, description="Shell script running the program on the task, in the "
                            "trial's sandbox")
    step_limit: int | None = Field(default=None, ge=1, description="Successful model calls a trial may make; "
                                   "then the gateway answers HTTP 429")
    cost_limit: float | None = Field(default=None, gt=0, description="USD a trial may spend; then HTTP 429")
    install_timeout_s: float = Field(default=900.0, gt=0, description="Timeout of the install script")
    model_kwargs: dict[str, Any] = Field(default_factory=dict, description="Extra LiteLLM parameters of the "
                                         "gateway's model (e.g. input_cost_per_token, output_cost_per_token)")


def parse_cli_settings(variant: VariantConfig, defaults: dict[str, str] | None = None) -> CliSettings:
    """The variant's settings over the agent's defaults; a problem is a ConfigError naming the variant."""
    return parse_variant_settings(CliSettings, variant, {**(defaults or {}), **variant.settings})


def render(template: str, *, instruction: str, model: str, version: str) -> str:
    """A template with its placeholders filled (values shell-quoted; ``${VAR}`` is left to the shell)."""
    values = {"instruction": shlex.quote(instruction), "model": shlex.quote(model),
              "version": shlex.quote(version), "agent_dir": installer.AGENT_DIR, "logs_dir": LOGS_DIR}
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


@register_agent
class CliAgent(Agent):
    """Runs the variant's ``settings.run`` script after installing ``settings.install`` once per block."""

    name = "cli"
    uses_gateway = True
    #: Defaults of ``settings`` (the presets fill install and run).
    defaults: ClassVar[dict[str, str]] = {}
    #: Variables the program needs in the sandbox (before the variant's own ``env``).
    program_env: ClassVar[dict[str, str]] = {}

    def __init__(self) -> None:
        self.installed: Path | None = None

    def settings(self, variant: VariantConfig) -> CliSettings:
        return parse_cli_settings(variant, self.defaults)

    def check(self, variant: VariantConfig) -> None:
        settings = self.settings(variant)
        if not variant.model:
            raise ConfigError(f"variant {variant.name}: the {self.name} agent needs `model:` (the LiteLLM model "
                              "string its calls are sent to, e.g. openai/gpt-4o-mini)")
        if not (settings.run or "").strip():
            raise ConfigError(f"variant {variant.name}: the {self.name} agent needs settings.run")
        if self.defaults and not settings.version:
            raise ConfigError(f"variant {variant.name}: the {self.name} agent needs settings.version "
                              "(the package version to install, e.g. 1.0.0): versions are pinned")
        _api_key(variant)

    def preflight(self, variant: VariantConfig) -> None:
        check_endpoint(variant.name, variant.api_base, _api_key(variant))

    def gateway_limits(self, variant: VariantConfig) -> tuple[int | None, float | None]:
        settings = self.settings(variant)
        return settings.step_limit, settings.cost_limit

    def _render(self, template: str, variant: VariantConfig, instruction: str = "") -> str:
        return render(template, instruction=instruction, model=variant.model or "",
                      version=self.settings(variant).version or "")

    async def install(self, variant: VariantConfig, cache_root: Path, ro_binds: list[str]) -> None:
        settings = self.settings(variant)
        if settings.install and settings.install.strip():
            script = self._render(settings.install, variant)
            self.installed = await installer.install(cache_root, self.name, variant.name, script,
                                                     settings.install_timeout_s, ro_binds)

    def agent_dirs(self, variant: VariantConfig) -> dict[str, Path]:
        """The installed program, read-only at the path it was installed to."""
        return {installer.AGENT_DIR: self.installed} if self.installed else {}

    async def run(self, ctx: AgentContext) -> AgentResult:
        settings = self.settings(ctx.variant)
        assert settings.run is not None
        script = self._render(settings.run, ctx.variant, ctx.task.instruction)
        prologue = f"export TRIALBOOK_AGENT_DIR={installer.AGENT_DIR}\n"
        # the program's defaults: the variant's own env (already in the sandbox) wins
        prologue += "".join(f"export {k}=\"${{{k}-{shlex.quote(v)}}}\"\n" for k, v in self.program_env.items())
        prologue += "".join(f'mkdir -p "${k}"\n' for k, v in self.program_env.items() if v.startswith(LOGS_DIR + "/"))
        prologue += f'export PATH="{installer.AGENT_DIR}/bin:{installer.AGENT_DIR}/node_modules/.bin:$PATH"\n'
        res = await ctx.exec(["bash", "-c", prologue + script])
        return AgentResult(
            exit_code=res.exit_code,
            timed_out=res.timed_out,
            commands=[_command_record(script, res.exit_code, _tail(ctx.paths.agent_stdout))],
            extra={k: v for k, v in (("agent_version", settings.version),
                                     ("agent_install", self.installed.name if self.installed else None))
                   if v is not None},
        )


@register_agent
class ClaudeCodeAgent(CliAgent):
    """Claude Code (``@anthropic-ai/claude-code`` from npm) in print mode, talking to the gateway's
    Anthropic API. Its session logs (JSONL) are kept under ``agent/claude-code/``."""

    name = "claude-code"
    defaults: ClassVar[dict[str, str]] = {
        "install": 'npm install --prefix "$TRIALBOOK_AGENT_DIR" @anthropic-ai/claude-code@{version}',
        "run": 'claude --print --verbose --output-format stream-json --dangerously-skip-permissions '
               '"$(cat "$TRIALBOOK_INSTRUCTION_FILE")"',
    }
    program_env: ClassVar[dict[str, str]] = {
        "CLAUDE_CONFIG_DIR": f"{LOGS_DIR}/claude-code",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        # a container's user is root in most images, where Claude Code refuses to skip permissions
        # unless told it is in a sandbox (which it is, whatever the environment)
        "IS_SANDBOX": "1",
    }


@register_agent
class CodexAgent(CliAgent):
    """Codex CLI (``@openai/codex`` from npm) in ``exec`` mode, talking to the gateway's OpenAI API.
    Its session logs are kept under ``agent/codex/``."""

    name = "codex"
    defaults: ClassVar[dict[str, str]] = {
        "install": 'npm install --prefix "$TRIALBOOK_AGENT_DIR" @openai/codex@{version}',
        # Codex ignores OPENAI_BASE_URL for its built-in provider: the gateway is a provider of its own.
        "run": 'codex exec --json --skip-git-repo-check --dangerously-bypass-approvals-and-sandbox '
               '-c model_provider=trialbook -c "model_providers.trialbook={name=\\"trialbook\\", '
               'base_url=\\"$OPENAI_BASE_URL\\", env_key=\\"OPENAI_API_KEY\\", wire_api=\\"responses\\"}" '
               '"$(cat "$TRIALBOOK_INSTRUCTION_FILE")" </dev/null',
    }
    program_env: ClassVar[dict[str, str]] = {"CODEX_HOME": f"{LOGS_DIR}/codex"}
