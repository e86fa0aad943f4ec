"""Per-trial features for job analysis, from the trial record, its ATIF trajectory and evaluation files.

Sources, per feature (``None`` always means "not known", never zero):

* ``n_turns`` / ``n_tool_calls``: the record, else counted in the trajectory (agent steps /
  their tool calls; copied-context steps and subagents are not counted).
* ``total_tokens`` / ``cost_usd``: the record's usage (total, else prompt + completion),
  else the trajectory's ``final_metrics``.
* ``duration_s``: the record (whole trial, setup and verifier included).
* ``patch_lines``: changed lines (``+``/``-`` lines, file headers excluded) of the trial's
  ``patch.diff``; 0 when the evaluation says the patch was empty.
* ``n_test_runs``: tool calls whose command runs tests (:data:`TEST_RUN_PATTERN` over the
  call's string arguments and its function name).
* ``n_error_observations``: observation results that show an error: a non-zero exit code
  (``exit_code`` / ``returncode`` in the result's or step's ``extra``, or
  ``<returncode>N</returncode>`` / ``exit code N`` in the text), or a marker of
  :data:`ERROR_PATTERN` (a Python traceback, ``SomethingError:`` at a line start,
  ``command not found``, ``No such file or directory``, ``Permission denied``).

Evaluation files (``report.json``, ``patch.diff``) are looked for where the trial's reader
says they may be (:meth:`SourceReader.evaluation_dirs`: only readers know their layouts).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trialbook.errors import SourceError, TrialbookError
from trialbook.jsonio import read_json
from trialbook.model.outcome import Outcome
from trialbook.model.swe_eval import SweEval
from trialbook.model.trajectory import Content, Trajectory
from trialbook.sources.base import TrialView, default_evaluation_dirs
from trialbook.sources.registry import get_reader

#: The numeric features compared between resolved and unresolved trials.
METRICS: tuple[str, ...] = ("n_turns", "n_tool_calls", "total_tokens", "cost_usd", "duration_s",
                            "patch_lines", "n_test_runs", "n_error_observations")

#: A tool call runs tests when its command (or function name) matches this.
TEST_RUN_PATTERN = re.compile(
    r"\bpytest\b|\bpy\.test\b|-m\s+(?:pytest|unittest)\b|\bunittest\b|\bnose2?tests?\b|\btox\b"
    r"|\b(?:npm|yarn|pnpm)\s+(?:run\s+)?test\b|\bgo\s+test\b|\bcargo\s+test\b|\bmvn\b[^\n]*\btest\b"
    r"|\bgradlew?\b[^\n]*\btest\b|\bphpunit\b|\brspec\b|\bjest\b|\bmocha\b|\bctest\b|\bmake\s+(?:test|check)\b"
    r"|\brun_tests?\b|\btests?\.sh\b|\bruntests\.py\b|\bmanage\.py\s+test\b",
    re.IGNORECASE,
)

#: Text markers of an error observation (besides a non-zero exit code).
ERROR_PATTERN = re.compile(
    r"Traceback \(most recent call last\)|^\s*(?:[\w.]+\.)?\w*(?:Error|Exception):\s|command not found"
    r"|No such file or directory|Permission denied",
    re.MULTILINE,
)
_EXIT_IN_TEXT = re.compile(r"<returncode>\s*(-?\d+)\s*</returncode>|\bexit(?:ed with)? code:?\s*(-?\d+)",
                           re.IGNORECASE)
_EXIT_KEYS = ("exit_code", "returncode")


@dataclass
class TrialFeatures:
    """Everything analysis knows about one trial; one line of ``instances.jsonl``."""

    trial_id: str
    trial_name: str
    task: str
    variant: str
    agent: str | None
    model: str | None
    attempt: int
    outcome: str | None
    counted: bool
    resolved: bool
    reward: float | None = None
    reason: str | None = None
    exception_type: str | None = None
    exception_phase: str | None = None
    limit: str | None = None
    exit_status: str | None = None
    agent_exit_code: int | None = None
    has_trajectory: bool = False
    trajectory_error: str | None = None
    n_agent_actions: int | None = None
    n_turns: int | None = None
    n_tool_calls: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cost_usd: float | None = None
    duration_s: float | None = None
    patch_lines: int | None = None
    patch_empty: bool | None = None
    n_test_runs: int | None = None
    n_error_observations: int | None = None
    report_found: bool = False
    patch_exists: bool | None = None
    patch_applied: bool | None = None
    f2p_total: int | None = None
    f2p_failed: int | None = None
    p2p_total: int | None = None
    p2p_failed: int | None = None
    gold: dict[str, Any] = field(default_factory=dict)
    tier: str | None = None
    category: str | None = None
    rule: str | None = None
    evidence: str | None = None

    def metric(self, name: str) -> float | None:
        """The value of one of :data:`METRICS` (None when unknown)."""
        value = getattr(self, name)
        return None if value is None else float(value)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def text_of(content: Content | None) -> str:
    """Message or observation content as plain text (image/audio parts are skipped)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(p.text or "" for p in content if p.type == "text")


def _strings(value: Any) -> list[str]:
    """Every string inside a JSON value (tool-call arguments), depth first."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _exit_code(extra: dict[str, Any] | None) -> int | None:
    for key in _EXIT_KEYS:
        value = (extra or {}).get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            return int(value)
    return None


def is_error_observation(text: str, extra: dict[str, Any] | None, step_extra: dict[str, Any] | None) -> bool:
    """True when one observation result shows an error (see the module docstring)."""
    code = _exit_code(extra)
    if code is None:
        code = _exit_code(step_extra)
    if code is None:
        m = _EXIT_IN_TEXT.search(text)
        if m:
            code = int(m.group(1) or m.group(2))
    if code is not None and code != 0:
        return True
    return bool(ERROR_PATTERN.search(text))


def is_test_run(function_name: str, arguments: dict[str, Any]) -> bool:
    """True when a tool call runs tests (see :data:`TEST_RUN_PATTERN`)."""
    return any(TEST_RUN_PATTERN.search(s) for s in (function_name, *_strings(arguments)))


@dataclass
class TrajectoryCounts:
    """What a trajectory says about turns, actions, tests and errors."""

    n_turns: int = 0
    n_tool_calls: int = 0
    n_agent_actions: int = 0
    n_test_runs: int = 0
    n_error_observations: int = 0


def count_trajectory(traj: Trajectory) -> TrajectoryCounts:
    """Count agent steps, tool calls, test runs and error observations of the top-level trajectory."""
    c = TrajectoryCounts()
    for step in traj.steps:
        if step.source != "agent" or step.is_copied_context:
            continue
        c.n_turns += 1
        calls = step.tool_calls or []
        c.n_tool_calls += len(calls)
        if calls or text_of(step.message).strip():
            c.n_agent_actions += 1
        c.n_test_runs += sum(1 for call in calls if is_test_run(call.function_name, call.arguments))
        for result in step.observation.results if step.observation else ():
            if is_error_observation(text_of(result.content), result.extra, step.extra):
                c.n_error_observations += 1
    return c


def patch_lines(text: str) -> int:
    """Changed lines of a unified diff: ``+``/``-`` lines, not the ``+++``/``---`` file headers."""
    n = 0
    for line in text.splitlines():
        if line.startswith(("+++ ", "--- ")) or line in ("+++", "---"):
            continue
        if line.startswith(("+", "-")):
            n += 1
    return n


def evaluation_files(view: TrialView) -> tuple[Path | None, Path | None]:
    """The trial's SWE ``report.json`` and ``patch.diff``, where its reader says they may be."""
    try:
        dirs = get_reader(view.layout).evaluation_dirs(view)
    except SourceError:  # a reader given by import path only: the usual places
        dirs = default_evaluation_dirs(view)
    report = next((d / "report.json" for d in dirs if (d / "report.json").is_file()), None)
    patch = next((d / "patch.diff" for d in dirs if (d / "patch.diff").is_file()), None)
    return report, patch


def report_entry(data: Any, task: str) -> dict[str, Any] | None:
    """The instance entry of a report.json: keyed by instance id, or bare."""
    if not isinstance(data, dict):
        return None
    entry = data.get(task)
    if isinstance(entry, dict):
        return entry
    if "tests_status" in data or "patch_exists" in data or "patch_successfully_applied" in data:
        return data
    if len(data) == 1:
        only = next(iter(data.values()))
        if isinstance(only, dict) and ("tests_status" in only or "patch_exists" in only):
            return only
    return None


def _apply_report(f: TrialFeatures, entry: dict[str, Any]) -> None:
    f.report_found = True
    if isinstance(entry.get("patch_exists"), bool):
        f.patch_exists = entry["patch_exists"]
    if entry.get("patch_is_None") is True:
        f.patch_exists = False
    if isinstance(entry.get("patch_successfully_applied"), bool):
        f.patch_applied = entry["patch_successfully_applied"]
    status = entry.get("tests_status")
    if isinstance(status, dict):
        for key, total_attr, failed_attr in (("FAIL_TO_PASS", "f2p_total", "f2p_failed"),
                                             ("PASS_TO_PASS", "p2p_total", "p2p_failed")):
            group = status.get(key)
            if isinstance(group, dict):
                ok, bad = group.get("success") or [], group.get("failure") or []
                setattr(f, total_attr, len(ok) + len(bad))
                setattr(f, failed_attr, len(bad))


def _usage(f: TrialFeatures, view: TrialView, traj: Trajectory | None) -> None:
    u = view.record.usage
    if u is not None:
        f.prompt_tokens, f.completion_tokens, f.cost_usd = u.prompt_tokens, u.completion_tokens, u.cost_usd
        f.total_tokens = u.total_tokens
        if f.total_tokens is None and u.prompt_tokens is not None and u.completion_tokens is not None:
            f.total_tokens = u.prompt_tokens + u.completion_tokens
    fm = traj.final_metrics if traj is not None else None
    if fm is not None:
        if f.total_tokens is None and fm.total_prompt_tokens is not None and fm.total_completion_tokens is not None:
            f.prompt_tokens, f.completion_tokens = fm.total_prompt_tokens, fm.total_completion_tokens
            f.total_tokens = fm.total_prompt_tokens + fm.total_completion_tokens
        if f.cost_usd is None:
            f.cost_usd = fm.total_cost_usd


def _base(view: TrialView, trial_id: str) -> TrialFeatures:
    r = view.record
    outcome = r.outcome
    exit_code = r.extra.get("agent_exit_code")
    exit_status = r.extra.get("exit_status")
    limit = r.extra.get("limit")
    return TrialFeatures(
        trial_id=trial_id, trial_name=r.trial_name, task=r.task, variant=r.variant, agent=r.agent,
        model=r.model, attempt=r.attempt, outcome=str(outcome) if outcome else None,
        counted=outcome is not None and outcome != Outcome.CANCELLED,
        resolved=outcome == Outcome.RESOLVED, reward=r.reward, reason=r.reason,
        exception_type=r.exception.type if r.exception else None,
        exception_phase=r.exception.phase if r.exception else None,
        limit=str(limit) if limit else None, exit_status=str(exit_status) if exit_status else None,
        agent_exit_code=exit_code if isinstance(exit_code, int) and not isinstance(exit_code, bool) else None,
        n_turns=r.n_turns, n_tool_calls=r.n_tool_calls, duration_s=r.duration_s,
    )


def extract_features(view: TrialView, trial_id: str) -> TrialFeatures:
    """All features of one trial (the trajectory is parsed here, once; problems are recorded, not raised)."""
    f = _base(view, trial_id)
    traj: Trajectory | None = None
    try:  # parsed without caching it on the view, so a big job never holds every trajectory at once
        traj = view.load_trajectory() if view.load_trajectory is not None else None
    except (TrialbookError, ValueError, OSError) as exc:
        f.trajectory_error = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
    if traj is not None:
        f.has_trajectory = True
        c = count_trajectory(traj)
        f.n_agent_actions, f.n_test_runs, f.n_error_observations = c.n_agent_actions, c.n_test_runs, \
            c.n_error_observations
        if f.n_turns is None:
            f.n_turns = c.n_turns
        if f.n_tool_calls is None:
            f.n_tool_calls = c.n_tool_calls
    _usage(f, view, traj)
    report, patch = evaluation_files(view)
    if report is not None:
        try:
            entry = report_entry(read_json(report), f.task)
        except TrialbookError:
            entry = None
        if entry is not None:
            _apply_report(f, entry)
    known = SweEval.of(view.record).patch_empty
    if known is not None:
        f.patch_empty = known
    if patch is not None:
        try:
            text = patch.read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = None
        if text is not None:
            f.patch_lines = patch_lines(text)
            f.patch_empty = not text.strip()
    if f.patch_exists is False and f.patch_empty is None:
        f.patch_empty = True
    if f.patch_lines is None and f.patch_empty:
        f.patch_lines = 0
    return f


def trial_ids(views: list[TrialView]) -> list[str]:
    """A unique id per trial: its trial name, suffixed ``#2``, ``#3``... where names repeat."""
    seen: dict[str, int] = {}
    out = []
    for v in views:
        name = v.record.trial_name
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return out
