"""Reader of copilot-experiments' legacy Python-run layout (spec 004), one run = one job.

::

    results/<experiment>/<run>/
      run.json                                   experiment, run_id, started_at, finished_at,
                                                 variants [{slug, agent, model}], tasks
      <variant>/<task>/trials/<NNN>/
        metrics.json                             variant, model, task, trial, success, reward,
                                                 n_turns, n_tool_calls, tokens {input, output,
                                                 total}, aiu, duration_sec, error
        analysis.json                            optional derived analysis (kept in extra)

``read()`` accepts ``results/``'s parent, ``results/``, an experiment, a run or one trial. A run
is a directory with ``run.json`` or, lacking it, one holding ``<variant>/<task>/trials/``.

Mapping: identity from metrics.json (path components as fallback; attempt = ``trial``, else the
``NNN`` number); agent and model from run.json's variant entry when metrics.json lacks them.
Outcome: an ``error`` ("Type: message") maps through the Harbor exception table (so
``TimeoutError`` is ``timeout``, unknown types ``agent_error``); else ``success``; else a positive
``reward``. A trial dir without a readable metrics.json is ``infra_error`` with the reason.
AIU is stored as recorded (AIU units). Copilot ``events.jsonl`` or ``trajectory.json`` under a
trial dir, when present, back ``TrialView.trajectory()``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from trialbook.errors import SourceError
from trialbook.model.outcome import Outcome, outcome_from_reward
from trialbook.model.trajectory import Trajectory, parse_trajectory
from trialbook.model.trial import ExceptionInfo, TrialRecord
from trialbook.model.usage import Usage
from trialbook.sources import copilot
from trialbook.sources.base import JobView, SourceReader, TrialView
from trialbook.sources.coerce import as_dict as _dict
from trialbook.sources.coerce import as_exact_int as _int
from trialbook.sources.coerce import as_finite as _number
from trialbook.sources.coerce import as_text as _str
from trialbook.sources.harbor_outcome import outcome_for_exception
from trialbook.sources.safe import SafeTree

_ERROR_TYPE_RE = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(?::|$)")
_NUMBER_RE = re.compile(r"[0-9]{1,9}")
_MAX_DEPTH = 4


def _trials_dirs(tree: SafeTree, run_dir: Path) -> list[Path]:
    """Every ``trials`` directory below a run (up to ``<variant>/<task>/trials`` and a bit deeper)."""
    found: list[Path] = []

    def walk(d: Path, depth: int) -> None:
        for sub in tree.subdirs(d):
            if sub.name == "trials":
                found.append(sub)
            elif depth < _MAX_DEPTH and not sub.is_symlink():
                walk(sub, depth + 1)

    walk(run_dir, 0)
    return found


def _is_run(tree: SafeTree, d: Path) -> bool:
    if tree.is_file(d / "run.json"):
        return True
    return any(tree.is_dir(t / "trials") for v in tree.subdirs(d) for t in tree.subdirs(v))


def _run_dirs(tree: SafeTree, path: Path) -> list[Path]:
    """Run directories at ``path``, in its experiments, or in ``results/`` (at most two levels down).

    Without ``run.json`` a run is recognised by its ``<variant>/<task>/trials`` dirs; that
    probe goes two levels down only inside a directory named ``results`` (keeps detection cheap).
    """
    if _is_run(tree, path):
        return [path]
    base = path / "results" if tree.is_dir(path / "results") else path
    if base != path and _is_run(tree, base):
        return [base]
    runs: list[Path] = []
    for level1 in tree.subdirs(base):
        if _is_run(tree, level1):
            runs.append(level1)
            continue
        for level2 in tree.subdirs(level1):
            if tree.is_file(level2 / "run.json") or (base.name == "results" and _is_run(tree, level2)):
                runs.append(level2)
    return runs


def _is_trial(tree: SafeTree, path: Path) -> bool:
    return path.parent.name == "trials" and (tree.exists(path / "metrics.json") or bool(_NUMBER_RE.fullmatch(path.name)))


def _run_of_trial(trial_dir: Path) -> Path:
    """The run holding a trial: the nearest ancestor with run.json, else ``<run>/<variant>/<task>/trials/``."""
    ancestors = list(trial_dir.parents)[1:_MAX_DEPTH + 2]
    fallback = trial_dir.parents[min(3, len(trial_dir.parents) - 1)]
    return next((a for a in ancestors if (a / "run.json").is_file()), fallback)


def _trajectory_loader(tree: SafeTree, trial_dir: Path, agent: str, model: str | None):
    def load() -> Trajectory | None:
        atif = tree.rglob(trial_dir, "trajectory.json", max_depth=2)
        if atif:
            return parse_trajectory(tree.read_json(atif[0]), atif[0])
        logs = tree.rglob(trial_dir, "events.jsonl", max_depth=3)
        if not logs:
            return None
        events, source = max(((copilot.read_events(tree, p), p) for p in logs), key=lambda pair: len(pair[0]))
        return copilot.convert_or_raise(events, source, agent_name=agent, model=model)

    return load


def _outcome(m: dict[str, Any]) -> tuple[Outcome, str | None, ExceptionInfo | None]:
    error = m.get("error")
    if error:
        text = str(error)
        match = _ERROR_TYPE_RE.match(text)
        kind = match.group(1) if match else "Error"
        message = text[match.end():].strip() if match else text
        return outcome_for_exception(kind), text[:500], ExceptionInfo(type=kind, message=message[:4000])
    if isinstance(m.get("success"), bool):
        return (Outcome.RESOLVED if m["success"] else Outcome.UNRESOLVED), None, None
    reward = _number(m.get("reward"))
    if reward is not None:
        return outcome_from_reward(reward), None, None
    return Outcome.VERIFIER_ERROR, "metrics.json has neither success nor reward", None


def _read_trial(tree: SafeTree, trial_dir: Path, job: str, experiment: str | None,
                variants: dict[str, dict[str, Any]]) -> TrialRecord:
    """One legacy trial; an unreadable metrics.json gives an ``infra_error`` record with the reason."""
    task_dir = trial_dir.parent.parent
    fallback_attempt = max(int(trial_dir.name), 1) if _NUMBER_RE.fullmatch(trial_dir.name) else 1
    extra: dict[str, Any] = {"experiment": experiment, "run": job}
    try:
        m = tree.read_json_object(trial_dir / "metrics.json")
    except SourceError as exc:
        m, problem = {}, str(exc)
    else:
        problem = None
    variant = _str(m.get("variant")) or task_dir.parent.name
    v = variants.get(variant, {})
    attempt = _int(m.get("trial"))
    fields: dict[str, Any] = {
        "trial_name": f"{task_dir.name}__{variant}__{trial_dir.name}", "job": job,
        "task": _str(m.get("task")) or task_dir.name, "variant": variant,
        "agent": _str(m.get("agent")) or _str(v.get("agent")) or "unknown",
        "model": _str(m.get("model")) or _str(v.get("model")),
        "attempt": attempt if attempt is not None and attempt >= 1 else fallback_attempt,
        "status": "finished",
    }
    if problem is not None:
        fields.update(outcome=Outcome.INFRA_ERROR, reason=f"unreadable metrics.json: {problem}"[:500])
    else:
        outcome, reason, exc = _outcome(m)
        tokens = _dict(m.get("tokens"))
        usage = Usage(prompt_tokens=_int(tokens.get("input")), completion_tokens=_int(tokens.get("output")),
                      total_tokens=_int(tokens.get("total")), cost_usd=_number(m.get("cost_usd")),
                      aiu=_number(m.get("aiu")))
        reward = _number(m.get("reward"))
        fields.update(outcome=outcome, reason=reason, exception=exc, reward=reward,
                      rewards={"reward": reward} if reward is not None else None,
                      usage=None if usage.is_empty() else usage, n_turns=_int(m.get("n_turns")),
                      n_tool_calls=_int(m.get("n_tool_calls")), duration_s=_number(m.get("duration_sec")),
                      started_at=_str(m.get("started_at")), finished_at=_str(m.get("finished_at")))
    if tree.is_file(trial_dir / "analysis.json"):
        try:
            extra["analysis"] = tree.read_json_object(trial_dir / "analysis.json")
        except SourceError as exc:
            extra["problems"] = [str(exc)[:300]]
    fields["extra"] = {k: val for k, val in extra.items() if val is not None}
    return TrialRecord(**fields)


def read_run(tree: SafeTree, run_dir: Path) -> JobView:
    """One legacy run as a job (every dir under a ``trials`` dir is a trial)."""
    problems: list[str] = []
    run: dict[str, Any] = {}
    if tree.exists(run_dir / "run.json"):
        try:
            run = tree.read_json_object(run_dir / "run.json")
        except SourceError as exc:
            problems.append(str(exc)[:300])
    experiment = _str(run.get("experiment")) or run_dir.parent.name
    variants = {v["slug"]: v for v in map(_dict, run.get("variants") or []) if isinstance(v.get("slug"), str)} \
        if isinstance(run.get("variants"), list) else {}
    trials = []
    for trials_dir in _trials_dirs(tree, run_dir):
        for trial_dir in tree.subdirs(trials_dir):
            record = _read_trial(tree, trial_dir, run_dir.name, experiment, variants)
            trials.append(TrialView(record=record, path=trial_dir, layout="legacy",
                                    load_trajectory=_trajectory_loader(tree, trial_dir, record.agent, record.model)))
    finished = _str(run.get("finished_at"))
    meta: dict[str, Any] = {"experiment": experiment, "tasks": run.get("tasks"),
                            "trials_per_task": run.get("trials_per_task")}
    if problems:
        meta["problems"] = problems
    return JobView(name=run_dir.name, path=run_dir, layout="legacy", trials=trials,
                   started_at=_str(run.get("started_at")), finished_at=finished,
                   status="finished" if finished else ("running" if run else None),
                   meta={k: v for k, v in meta.items() if v is not None})


class LegacyReader(SourceReader):
    """copilot-experiments' legacy ``results/<experiment>/<run>/.../trials/<NNN>/`` runs."""

    name = "legacy"

    def detect(self, path: Path) -> bool:
        if not path.is_dir():
            return False
        try:
            tree = SafeTree(path, quiet=True)
        except SourceError:
            return False
        if _is_trial(tree, path):
            return True
        return any(_trials_dirs(tree, run) for run in _run_dirs(tree, path))

    def job_dirs(self, path: Path) -> list[Path]:
        """Run directories under ``path`` without reading any trial."""
        path = Path(path)
        tree = SafeTree(path, quiet=True)
        if _is_trial(tree, path):
            return [_run_of_trial(path)]
        return _run_dirs(tree, path)

    def trial_dirs(self, job_dir: Path) -> list[Path]:
        """The trial directories of one run (no file read)."""
        tree = SafeTree(job_dir, quiet=True)
        return sorted(d for t in _trials_dirs(tree, Path(job_dir)) for d in tree.subdirs(t))

    def read(self, path: Path) -> list[JobView]:
        path = Path(path)
        if not path.is_dir():
            raise SourceError("not a directory", path)
        if _is_trial(SafeTree(path), path):
            run_dir = _run_of_trial(path)
            job = read_run(SafeTree(run_dir), run_dir)
            job.trials = [t for t in job.trials if t.path == path]
            return [job]
        tree = SafeTree(path)
        runs = _run_dirs(tree, path)
        if not runs:
            raise SourceError("not a legacy results tree (results/<experiment>/<run>/.../trials/<NNN>/)", path)
        return [read_run(tree, run) for run in runs]
