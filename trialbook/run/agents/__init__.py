"""Agents a variant can use, by name. ``register_agent`` adds more (e.g. LLM agents)."""

from trialbook.run.agents.base import (
    AGENTS,
    Agent,
    AgentContext,
    AgentResult,
    get_agent,
    register_agent,
)
from trialbook.run.agents.installed import ClaudeCodeAgent, CliAgent, CodexAgent
from trialbook.run.agents.miniswe import MiniSweAgent
from trialbook.run.agents.simple import CommandAgent, NopAgent, OracleAgent

__all__ = [
    "AGENTS",
    "Agent",
    "AgentContext",
    "AgentResult",
    "ClaudeCodeAgent",
    "CliAgent",
    "CodexAgent",
    "CommandAgent",
    "MiniSweAgent",
    "NopAgent",
    "OracleAgent",
    "get_agent",
    "register_agent",
]
