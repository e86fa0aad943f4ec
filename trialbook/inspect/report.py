"""The report ``trialbook analyze`` prints about one trial, whatever log it came from.

A :class:`TrialReport` is built from a Copilot session log, an ATIF trajectory or a LiteLLM
log (one module each in this package) and then completed with the trial's record
(outcome, reward, exception) when the log belongs to a known trial.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from trialbook.model.trial import TrialRecord
from trialbook.results.summary import record_error

#: Longest text kept for one timeline entry.
TIMELINE_TEXT = 100

NO_LOG_MESSAGE = "no Copilot session log or trajectory is available"


def one_line(text: Any, limit: int = TIMELINE_TEXT) -> str:
    """``text`` squeezed onto one line and cut to ``limit`` characters (with an ellipsis)."""
    if text is None:
        return ""
    if not isinstance(text, str):
        text = " ".join(p.text for p in text if getattr(p, "text", None)) if isinstance(text, list) else str(text)
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def parse_time(value: str | None) -> datetime | None:
    """An ISO 8601 timestamp (``Z`` accepted) as an aware datetime; None when absent or malformed."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def span_seconds(first: str | None, last: str | None) -> float | None:
    """Seconds from ``first`` to ``last`` (None unless both parse)."""
    a, b = parse_time(first), parse_time(last)
    if a is None or b is None:
        return None
    try:
        return round((b - a).total_seconds(), 3)
    except TypeError:  # naive vs aware
        return None


@dataclass
class TimelineEntry:
    """One line of the compact timeline: a step, an LLM call or an event."""

    index: int
    kind: str  # system | user | agent | tool | llm_call | error
    text: str
    offset_s: float | None = None
    tokens: int | None = None
    tools: list[str] = field(default_factory=list)


@dataclass
class TrialReport:
    """What one trial did: outcome, counts, usage, errors and a timeline (None = unknown)."""

    source: str | None  # copilot_events | atif | litellm | None (no log)
    source_path: str | None = None
    job: str | None = None
    trial: str | None = None
    number: int | None = None
    task: str | None = None
    variant: str | None = None
    agent: str | None = None
    model: str | None = None
    outcome: str | None = None
    reward: float | None = None
    reason: str | None = None
    n_turns: int | None = None
    n_tool_calls: int | None = None
    tool_calls: dict[str, int] = field(default_factory=dict)
    n_llm_calls: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    total_tokens: int | None = None
    cost_usd: float | None = None
    aiu: float | None = None
    errors: list[str] = field(default_factory=list)
    duration_s: float | None = None
    started_at: str | None = None
    finished_at: str | None = None
    timeline: list[TimelineEntry] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Last lines of what the verifier and the agent printed (``verifier_output``, ``agent_output``).
    output_tails: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (what ``analyze --json`` prints)."""
        return asdict(self)

    def finish_totals(self) -> None:
        """Fill ``total_tokens`` from prompt + completion when only those are known."""
        if self.total_tokens is None and self.prompt_tokens is not None and self.completion_tokens is not None:
            self.total_tokens = self.prompt_tokens + self.completion_tokens

    def apply_record(self, record: TrialRecord, number: int | None = None) -> None:
        """Add the trial's identity and verdict; record values fill what the log did not say.

        The log stays the primary source for counts and usage (spec 004); duration comes from
        the record, which times the whole trial rather than the agent's log.
        """
        self.job, self.trial, self.number = record.job, record.trial_name, number
        self.task, self.variant, self.agent = record.task, record.variant, record.agent
        self.model = self.model or record.model
        self.outcome = str(record.outcome) if record.outcome else None
        self.reward, self.reason = record.reward, record.reason
        self.n_turns = self.n_turns if self.n_turns is not None else record.n_turns
        self.n_tool_calls = self.n_tool_calls if self.n_tool_calls is not None else record.n_tool_calls
        u = record.usage
        if u is not None:
            for name in ("prompt_tokens", "completion_tokens", "cached_tokens", "total_tokens",
                         "cost_usd", "aiu", "n_llm_calls"):
                if getattr(self, name) is None:
                    setattr(self, name, getattr(u, name))
        err = record_error(record)
        if err and err not in self.errors:
            self.errors.insert(0, err)
        self.duration_s = record.duration_s if record.duration_s is not None else self.duration_s
        self.started_at = record.started_at or self.started_at
        self.finished_at = record.finished_at or self.finished_at
        self.finish_totals()


def no_log_report(record: TrialRecord, number: int | None) -> TrialReport:
    """The report of a trial with no usable log: its record, and a note saying so."""
    report = TrialReport(source=None, notes=[NO_LOG_MESSAGE])
    report.apply_record(record, number)
    return report
