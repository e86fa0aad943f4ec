"""Agents that need no model: ``oracle`` (runs the reference solution), ``nop``, ``command``."""

from __future__ import annotations

from trialbook.errors import ConfigError
from trialbook.run.agents.base import Agent, AgentContext, AgentResult, register_agent


def _command_record(command: str, exit_code: int | None, output: str) -> dict[str, object]:
    return {"command": command, "exit_code": exit_code, "output": output}


def _tail(path, limit: int = 20_000) -> str:
    """The last ``limit`` bytes of an output file (never the whole file: it may be huge)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - limit))
            data = fh.read(limit)
    except FileNotFoundError:
        return ""
    return data.decode("utf-8", errors="replace")


@register_agent
class OracleAgent(Agent):
    """Runs the task's ``solution/solve.sh`` (mounted read-only at ``/solution``)."""

    name = "oracle"
    needs_solution = True

    async def run(self, ctx: AgentContext) -> AgentResult:
        if ctx.task.solution_dir is None:
            raise ConfigError(f"task {ctx.task.name} has no solution/ for the oracle agent")
        # the runner mounts a private copy of solution/ at /solution for agents that need it
        res = await ctx.exec(["bash", "/solution/solve.sh"])
        out = _tail(ctx.paths.agent_stdout)
        return AgentResult(
            exit_code=res.exit_code,
            timed_out=res.timed_out,
            commands=[_command_record("bash /solution/solve.sh", res.exit_code, out)],
        )


@register_agent
class NopAgent(Agent):
    """Does nothing: the baseline every task should fail."""

    name = "nop"

    async def run(self, ctx: AgentContext) -> AgentResult:
        return AgentResult(exit_code=0)


@register_agent
class CommandAgent(Agent):
    """Runs the variant's ``command`` with ``bash -c`` in the sandbox.

    The instruction is available as ``$TRIALBOOK_INSTRUCTION`` and as the file named by
    ``$TRIALBOOK_INSTRUCTION_FILE`` (``/logs/agent/instruction.md``).
    """

    name = "command"

    def check(self, variant) -> None:
        if not variant.command or not variant.command.strip():
            raise ConfigError(f"variant {variant.name}: the command agent needs `command:`")

    async def run(self, ctx: AgentContext) -> AgentResult:
        command = ctx.variant.command or ""
        res = await ctx.exec(["bash", "-c", command])
        out = _tail(ctx.paths.agent_stdout)
        return AgentResult(
            exit_code=res.exit_code,
            timed_out=res.timed_out,
            commands=[_command_record(command, res.exit_code, out)],
        )
