"""One Harbor/Pier trial directory read into a draft record (the job fills in variant and attempt).

Split from :mod:`trialbook.sources.harbor` (which documents the layout and the decisions) so each
module stays small. Every value read from a file is type-checked: a damaged file degrades to
missing fields, a ``problems`` note in ``extra``, or an ``infra_error`` record — never a crash.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from trialbook.errors import SourceError
from trialbook.grading.reward import primary_reward, rewards_from_json, rewards_from_text
from trialbook.model.outcome import Outcome, outcome_from_reward
from trialbook.model.trajectory import Trajectory, parse_trajectory
from trialbook.model.trial import ExceptionInfo, PhaseTiming, TrialRecord
from trialbook.model.usage import Usage
from trialbook.sources import copilot
from trialbook.sources.coerce import as_dict as _dict
from trialbook.sources.coerce import as_exact_int as _int
from trialbook.sources.coerce import as_finite as _number
from trialbook.sources.coerce import as_text as _str
from trialbook.sources.harbor_outcome import outcome_for_exception
from trialbook.sources.safe import SafeTree

#: Harbor's phase names -> ours (``TrialRecord.timings`` keys).
PHASES = {"environment_setup": "environment_setup", "agent_setup": "agent_setup",
          "agent_execution": "agent", "verifier": "verifier"}


def _seconds(start: str | None, end: str | None) -> float | None:
    try:
        a = datetime.fromisoformat(start.replace("Z", "+00:00"))  # type: ignore[union-attr]
        b = datetime.fromisoformat(end.replace("Z", "+00:00"))  # type: ignore[union-attr]
        return round((b - a).total_seconds(), 6)
    except (AttributeError, ValueError, TypeError):
        return None


@dataclass
class TrialDraft:
    """A trial's fields before the job-level pass assigns ``variant`` and ``attempt``."""

    #: The trial directory (a sibling known only by its stored identity keeps the plain string).
    path: Path | str
    trial_name: str
    job: str
    task: str
    agent: str
    model: str | None = None
    model_short: str | None = None
    started_at: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    variant: str = "unknown"
    attempt: int = 1
    loader: Callable[[], Trajectory | None] | None = None
    #: The files whose signatures the index keeps (``HarborReader.trial_files``), listed while reading.
    files: list[str] | None = None
    #: ``path -> (size, mtime_ns)`` of the files read, from their ``fstat`` (the index's signatures reuse them).
    stats: dict[str, tuple[int, int]] | None = None

    def identity(self) -> list[Any]:
        """What the job-level pass needs of this trial, as stored by the index for its siblings."""
        return [self.trial_name, self.task, self.agent, self.model, self.model_short, self.started_at]

    @classmethod
    def from_identity(cls, path: Path | str, job: str, identity: Any) -> TrialDraft | None:
        """The draft :meth:`identity` describes (None when ``identity`` is not one)."""
        if not (isinstance(identity, list) and len(identity) == 6 and all(
                v is None or isinstance(v, str) for v in identity) and identity[0] and identity[1] and identity[2]):
            return None
        name, task, agent, model, short, started = identity
        return cls(path=path, trial_name=name, job=job, task=task, agent=agent, model=model, model_short=short,
                   started_at=started)

    def record(self) -> TrialRecord:
        """The finished :class:`TrialRecord`."""
        return TrialRecord(trial_name=self.trial_name, job=self.job, task=self.task, variant=self.variant,
                           agent=self.agent, model=self.model, attempt=self.attempt,
                           started_at=self.started_at, **self.fields)


def _rewards(raw: Any) -> dict[str, float] | None:
    """A rewards mapping with only finite numeric values (None when nothing usable)."""
    out = {str(k): v for k, v in ((k, _number(v)) for k, v in _dict(raw).items()) if v is not None}
    return out or None


def _reward_file(tree: SafeTree, verifier: str) -> tuple[str | None, dict[str, float] | None, str | None]:
    """(file name, rewards, problem) of ``verifier/reward.json`` (preferred) or ``reward.txt``."""
    for name in ("reward.json", "reward.txt"):
        path = f"{verifier}/{name}"
        if not tree.is_file(path):
            continue
        try:
            if name == "reward.json":
                rewards = rewards_from_json(tree.read_json(path), lenient=True)
            else:
                rewards = rewards_from_text(tree.read_text(path), lenient=True)
            return name, rewards or None, None
        except (SourceError, ValueError) as exc:
            return name, None, f"{path}: unreadable reward: {exc}"[:300]
    return None, None, None


def _exception(info: dict[str, Any], result: dict[str, Any]) -> ExceptionInfo | None:
    """Harbor's ``exception_info`` in our shape; the phase is the one running when it occurred."""
    kind = _str(info.get("exception_type"))
    if kind is None:
        return None
    occurred = _str(info.get("occurred_at"))
    phase = None
    for harbor_phase, ours in PHASES.items():
        elapsed = _seconds(_str(_dict(result.get(harbor_phase)).get("started_at")), occurred)
        if elapsed is not None and elapsed >= 0:
            phase = ours
    return ExceptionInfo(type=kind, message=str(info.get("exception_message") or "")[:4000], phase=phase,
                         traceback=_str(info.get("exception_traceback")))


def _trajectory_counts(data: Any) -> tuple[dict[str, Any], int | None, int | None]:
    """Usage fields from ATIF ``final_metrics`` and (agent steps, tool calls) from a raw trajectory
    dict: one pass over the steps, no model built (this runs for every trial of a reindex; the
    counts equal those of the validated ATIF model, which a test checks)."""
    data = _dict(data)
    fm = _dict(data.get("final_metrics"))
    usage = {"prompt_tokens": _int(fm.get("total_prompt_tokens")),
             "completion_tokens": _int(fm.get("total_completion_tokens")),
             "cached_tokens": _int(fm.get("total_cached_tokens")), "cost_usd": _number(fm.get("total_cost_usd"))}
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list):
        return usage, None, None
    seen = False
    turns = calls = 0
    for step in raw_steps:
        if isinstance(step, dict):
            seen = True
            if step.get("source") == "agent":
                turns += 1
                tool_calls = step.get("tool_calls")
                if isinstance(tool_calls, list):
                    calls += len(tool_calls)
    return (usage, turns, calls) if seen else (usage, None, None)


def _merge_usage(sources: list[dict[str, Any]]) -> Usage | None:
    """Field by field, the first source that knows the value (module docstring of harbor.py);
    sources are plain field dicts, so only the merged result is validated into a model."""
    merged: dict[str, Any] = {}
    for source in sources:
        for name, value in source.items():
            if value is not None and name not in merged:
                merged[name] = value
    if not merged:
        return None
    if "total_tokens" not in merged and "prompt_tokens" in merged and "completion_tokens" in merged:
        merged["total_tokens"] = merged["prompt_tokens"] + merged["completion_tokens"]
    return Usage(**merged)


def _copilot_summary(tree: SafeTree, agent_dir: str, problems: list[str]) -> copilot.CopilotSummary | None:
    """Summary of the trial's Copilot session logs (several sessions are added up)."""
    summaries = []
    logs = copilot.session_logs(tree, Path(agent_dir)) if tree.exists(f"{agent_dir}/copilot-session") else []
    for log in logs:
        try:
            summaries.append(copilot.summarize_events(copilot.read_events(tree, log)))
        except SourceError as exc:
            problems.append(str(exc)[:300])
    if not summaries and tree.is_file(f"{agent_dir}/copilot-cli.jsonl"):
        records = copilot.read_cli_jsonl(tree, Path(agent_dir, "copilot-cli.jsonl"), problems)
        if records:
            summaries.append(copilot.summarize_events(records))
    summaries = [s for s in summaries if s.n_events]
    return copilot.merge_summaries(summaries) if summaries else None


def _otel_summary(tree: SafeTree, agent_dir: str, problems: list[str]) -> copilot.CopilotSummary | None:
    path = f"{agent_dir}/copilot-otel.jsonl"
    if not tree.is_file(path):
        return None
    try:
        summary = copilot.summarize_otel(tree.iter_jsonl(path))
    except SourceError as exc:
        problems.append(str(exc)[:300])
        return None
    return summary if summary.n_events else None


def trajectory_loader(tree: SafeTree, trial_dir: Path, agent: str, model: str | None) -> Callable[[], Trajectory | None]:
    """Loader: ``agent/trajectory.json`` (ATIF), else built from the Copilot session log or CLI JSONL."""

    def load() -> Trajectory | None:
        agent_dir = trial_dir / "agent"
        atif = agent_dir / "trajectory.json"
        if tree.exists(atif):
            return parse_trajectory(tree.read_json(atif), atif)
        logs = copilot.session_logs(tree, agent_dir)
        if logs:
            events, source = max(((copilot.read_events(tree, p), p) for p in logs), key=lambda pair: len(pair[0]))
        elif tree.is_file(agent_dir / "copilot-cli.jsonl"):
            source = agent_dir / "copilot-cli.jsonl"
            events = copilot.read_cli_jsonl(tree, source, [])
        else:
            return None
        return copilot.convert_or_raise(events, source, agent_name=agent, model=model)

    return load


def _identity(result: dict[str, Any], config: dict[str, Any], trial_dir: Path) -> tuple[str, str, str | None, str | None]:
    """(task, agent, model as configured, model as Harbor's evals spell it)."""
    rc = _dict(result.get("config"))
    task_cfg = _dict(rc.get("task")) or _dict(config.get("task"))
    task_path = _str(task_cfg.get("path"))
    task = (_str(result.get("task_name")) or _str(task_cfg.get("name"))
            or (Path(task_path).name if task_path else None) or trial_dir.name.split("__")[0])
    agent_cfg = _dict(rc.get("agent")) or _dict(config.get("agent"))
    info = _dict(result.get("agent_info"))
    agent = _str(info.get("name")) or _str(agent_cfg.get("name")) or _str(agent_cfg.get("import_path")) or "unknown"
    model_info = _dict(info.get("model_info"))
    short = _str(model_info.get("name"))
    provider = _str(model_info.get("provider"))
    model = _str(agent_cfg.get("model_name")) or (f"{provider}/{short}" if provider and short else short)
    return task, agent, model, short or (model.rsplit("/", 1)[-1] if model else None)


def identity_draft(tree: SafeTree, trial_dir: Path, job: str) -> TrialDraft:
    """Only what variant and attempt numbering need (result.json / config.json identity, start time).

    Used for the siblings of the trials a partial read asks for (incremental reindex).
    """
    td = os.fspath(trial_dir)
    res = _json_or_empty(tree, f"{td}/result.json")
    # Harbor's result.json embeds the trial config: config.json can only add what it lacks
    complete = _str(res.get("trial_name")) and _str(res.get("task_name")) and _dict(_dict(res.get("config")).get("agent"))
    config = {} if complete else _json_or_empty(tree, f"{td}/config.json")
    task, agent, model, short = _identity(res, config, trial_dir)
    name = _str(res.get("trial_name")) or _str(config.get("trial_name")) or trial_dir.name
    return TrialDraft(path=trial_dir, trial_name=name, job=job, task=task, agent=agent, model=model,
                      model_short=short, started_at=_str(res.get("started_at")))


def _json_or_empty(tree: SafeTree, path: str) -> dict[str, Any]:
    """A JSON object file, or ``{}`` when it is absent or unusable."""
    try:
        return tree.read_json_object(path) if tree.exists(path) else {}
    except SourceError:
        return {}


def read_trial(tree: SafeTree, trial_dir: Path, job: str, *, job_running: bool) -> TrialDraft:
    """One trial directory as a draft; missing or unreadable files give reasons, never exceptions.

    Each of the trial's directories is listed once (:meth:`SafeTree.snapshot`) and paths are
    plain strings: this runs for every trial of a cold reindex.
    """
    with tree.snapshot():
        draft = _read_trial(tree, trial_dir, os.fspath(trial_dir), job, job_running)
        draft.stats = tree.read_stats()
    return draft


def _read_trial(tree: SafeTree, trial_dir: Path, td: str, job: str, job_running: bool) -> TrialDraft:
    problems: list[str] = []
    result: dict[str, Any] | None = None
    config: dict[str, Any] = {}
    missing_result = False
    try:
        result = tree.read_json_if_present(f"{td}/result.json")
        missing_result = result is None
    except SourceError as exc:
        problems.append(str(exc)[:300])
    try:
        config = tree.read_json_if_present(f"{td}/config.json") or {}
    except SourceError as exc:
        problems.append(str(exc)[:300])
    res = result or {}
    task, agent, model, short = _identity(res, config, trial_dir)
    name = _str(res.get("trial_name")) or _str(config.get("trial_name")) or trial_dir.name
    agent_dir = f"{td}/agent"
    draft = TrialDraft(path=trial_dir, trial_name=name, job=job, task=task, agent=agent, model=model,
                       model_short=short, started_at=_str(res.get("started_at")),
                       loader=trajectory_loader(tree, trial_dir, agent, model), files=_trial_files(tree, td))
    extra: dict[str, Any] = {}
    reward_file, file_rewards, problem = _reward_file(tree, f"{td}/verifier")
    if problem:
        problems.append(problem)
    if reward_file:
        extra["reward_file"] = reward_file

    summary = _copilot_summary(tree, agent_dir, problems)
    otel = _otel_summary(tree, agent_dir, problems)
    atif_usage: dict[str, Any] = {}
    atif_turns = atif_calls = None
    if tree.is_file(f"{agent_dir}/trajectory.json"):
        try:
            atif_usage, atif_turns, atif_calls = _trajectory_counts(tree.read_json(f"{agent_dir}/trajectory.json"))
        except SourceError as exc:
            problems.append(str(exc)[:300])
    ar = _dict(res.get("agent_result"))
    agent_usage = {"prompt_tokens": _int(ar.get("n_input_tokens")), "completion_tokens": _int(ar.get("n_output_tokens")),
                   "cached_tokens": _int(ar.get("n_cache_tokens")), "cost_usd": _number(ar.get("cost_usd"))}
    sources = [agent_usage, atif_usage] + [dict(s.usage()) for s in (summary, otel) if s is not None]
    if summary is not None:
        extra["copilot"] = summary.to_dict()
    if otel is not None:
        extra["copilot_otel"] = otel.to_dict()
    cli_text = f"{agent_dir}/copilot-cli.txt"
    if tree.is_file(cli_text):
        try:
            error_line = copilot.cli_error(tree.read_text(cli_text))
        except SourceError:
            error_line = None
        if error_line:
            extra["cli_error"] = error_line

    fields: dict[str, Any] = {
        "usage": _merge_usage(sources),
        "n_turns": next((v for v in (summary and summary.n_turns, atif_turns) if v is not None), None),
        "n_tool_calls": next((v for v in (summary and summary.n_tool_calls, atif_calls,
                                          otel and otel.n_tool_calls) if v is not None), None),
    }
    if result is None:
        fields.update(_without_result(tree, trial_dir, missing_result, job_running, problems))
    else:
        fields.update(_from_result(res, file_rewards, extra))
    if problems:
        extra["problems"] = problems
    fields["extra"] = extra
    draft.fields = fields
    return draft


def _without_result(tree: SafeTree, trial_dir: Path, missing: bool, job_running: bool,
                    problems: list[str]) -> dict[str, Any]:
    """Status and outcome of a trial whose result.json is absent or unreadable."""
    if missing and job_running:
        return {"status": "running", "reason": "no result.json yet (job still running)"}
    if missing:
        has_config = tree.exists(os.path.join(trial_dir, "config.json"))
        reason = "result.json missing" + ("" if has_config else " (and config.json)") + "; trial never finished"
        if tree.is_file(os.path.join(trial_dir, "exception.txt")):
            try:
                last = tree.read_text(os.path.join(trial_dir, "exception.txt")).strip().splitlines()[-1:]
            except SourceError:
                last = []
            if last:
                reason += f"; exception.txt: {last[0][:200]}"
    else:
        reason = f"unreadable result.json: {problems[0] if problems else 'unknown problem'}"
    return {"status": "finished", "outcome": Outcome.INFRA_ERROR, "reason": reason}


def _from_result(res: dict[str, Any], file_rewards: dict[str, float] | None, extra: dict[str, Any]) -> dict[str, Any]:
    """Outcome, rewards, timings and exception of a trial with a readable result.json."""
    rewards = _rewards(_dict(res.get("verifier_result")).get("rewards")) or file_rewards
    reward = primary_reward(rewards) if rewards else None
    exc = _exception(_dict(res.get("exception_info")), res)
    if exc is not None:
        outcome = outcome_for_exception(exc.type)
        first = exc.message.strip().splitlines()[0] if exc.message.strip() else ""
        reason = f"{exc.type}: {first}"[:500] if first else exc.type
        if extra.get("cli_error"):
            reason += f" ({extra['cli_error']})"
    elif reward is not None:
        outcome, reason = outcome_from_reward(reward), None
    else:
        disabled = _dict(_dict(res.get("config")).get("verifier")).get("disable") is True
        outcome = Outcome.VERIFIER_ERROR
        reason = "verifier disabled: no reward" if disabled else "no reward recorded (no verifier_result, no verifier/reward.*)"
    timings = {}
    for harbor_phase, ours in PHASES.items():
        t = _dict(res.get(harbor_phase))
        start, end = _str(t.get("started_at")), _str(t.get("finished_at"))
        if start or end:
            timings[ours] = PhaseTiming(started_at=start, finished_at=end, duration_s=_seconds(start, end))
    finished = _str(res.get("finished_at"))
    return {"status": "finished", "outcome": outcome, "reason": reason, "reward": reward, "rewards": rewards,
            "finished_at": finished, "duration_s": _seconds(_str(res.get("started_at")), finished),
            "timings": timings, "exception": exc}



#: Agent logs whose change means the trial must be read again.
AGENT_LOGS = ("trajectory.json", "copilot-otel.jsonl", "copilot-cli.jsonl", "copilot-cli.txt")


def trial_files(td: str, listing: Callable[[str], dict[str, os.DirEntry[str]] | None]) -> list[str]:
    """Files whose change means re-reading the trial at ``td``: the trial dir, its own regular
    files, the Copilot session logs, the agent logs and the rewards (``listing`` gives a
    directory's entries by name, None when it cannot be listed). A link counts only when it
    leads to a regular file inside the trial."""
    trial = listing(td) or {}
    agent, verifier = listing(f"{td}/agent") or {}, listing(f"{td}/verifier") or {}
    found = [td, *sorted(e.path for e in trial.values() if e.is_file(follow_symlinks=False))]
    links: SafeTree | None = None
    if "copilot-session" in agent:
        links = SafeTree(td, quiet=True)
        found += [str(p) for p in copilot.session_logs(links, Path(td, "agent"))]
    for entries, names in ((agent, AGENT_LOGS), (verifier, ("reward.json", "reward.txt"))):
        for name in names:
            entry = entries.get(name)
            if entry is None:
                continue
            if entry.is_symlink():
                links = links or SafeTree(td, quiet=True)
                if not links.is_file(entry.path):
                    continue
            elif not entry.is_file(follow_symlinks=False):
                continue
            found.append(entry.path)
    return found


def _trial_files(tree: SafeTree, td: str) -> list[str] | None:
    """:func:`trial_files` from the snapshot's listings (None when the trial cannot be listed)."""
    try:
        return trial_files(td, tree.listing)
    except (OSError, SourceError):
        return None
