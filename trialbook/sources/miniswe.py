"""Reader of mini-swe-agent SWE-bench batches, joined with their swebench evaluation when present.

::

    <batch>/                                  -> one job, named after this dir
      preds.json                              {instance_id: {model_name_or_path, model_patch}}
      exit_statuses.yaml                      instances_by_exit_status (optional)
      <instance_id>/<instance_id>.traj.json   info (exit_status, submission, model_stats, config), messages
      logs/run_evaluation/<run_id>/<model>/<instance_id>/report.json   (swebench, optional)
      <model>.<run_id>.json                   (swebench run summary, optional)

Identity: task = instance id, variant = ``model_name_or_path`` with ``/`` written ``__`` (the
name swebench gives its log dir), attempt 1, agent ``mini-swe-agent``. Outcome: an exit
status other than ``Submitted`` / ``LimitsExceeded`` is an error (``TimeExceeded`` -> timeout,
others classified by :func:`~trialbook.sources.swe_outcome.classify_error`, e.g.
``RepeatedFormatError`` -> agent_error); otherwise the swebench verdict
(:mod:`trialbook.sources.swebench`), or "not evaluated" (an empty submission is unresolved).
An instance listed in preds.json whose trajectory file is missing or unreadable is an
``infra_error`` with the reason. Usage: tokens summed over every reply's ``usage`` (format-error
replies included), cost and call count from ``info.model_stats``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from trialbook.errors import SourceError
from trialbook.model.outcome import Outcome
from trialbook.model.swe_eval import SweEval
from trialbook.model.trajectory import Trajectory
from trialbook.model.trial import TrialRecord
from trialbook.model.usage import Usage
from trialbook.sources.base import JobView, SourceReader, TrialView
from trialbook.sources.coerce import as_amount, as_count, as_str
from trialbook.sources.miniswe_messages import (
    action_regex,
    build_trajectory,
    parse_messages,
    turn_totals,
)
from trialbook.sources.safe import SafeTree
from trialbook.sources.swe_outcome import EvalResult, classify_error, not_evaluated
from trialbook.sources.swebench_logs import InstanceEval, model_evaluations
from trialbook.yamlio import load_yaml

AGENT = "mini-swe-agent"
#: Exit statuses after which the submission is graded (a hit step/cost limit is an outcome, not a crash).
GRADED_EXITS = frozenset({"Submitted", "LimitsExceeded", ""})


def traj_path(batch: Path, instance: str) -> Path:
    """``<batch>/<id>/<id>.traj.json``."""
    return batch / instance / f"{instance}.traj.json"


def is_batch(path: Path) -> bool:
    """A batch dir: at least one ``<id>/<id>.traj.json``, or preds.json with mini-swe-agent's exit_statuses*.yaml.

    preds.json alone is not enough: it is also the usual name of a plain swebench predictions file.
    """
    if not path.is_dir():
        return False
    try:
        if any(traj_path(path, d.name).is_file() for d in path.iterdir() if d.is_dir()):
            return True
    except OSError:
        return False
    return (path / "preds.json").is_file() and any(path.glob("exit_statuses*.yaml"))


def _selection(path: Path, tree: SafeTree) -> list[tuple[Path, str | None]]:
    """``(batch, only_instance)`` pairs for a path: a traj file, an instance dir, a batch, or a dir of batches."""
    if path.is_file() and path.name.endswith(".traj.json"):
        return [(path.parent.parent, path.parent.name)]
    if traj_path(path.parent, path.name).is_file() and not (path / "preds.json").is_file():
        return [(path.parent, path.name)]
    if is_batch(path):
        return [(path, None)]
    return [(d, None) for d in tree.subdirs(path) if is_batch(d)]


def _read_preds(batch: Path, tree: SafeTree) -> tuple[dict[str, dict[str, Any]], str | None]:
    if not tree.exists(batch / "preds.json"):
        return {}, None
    try:
        data = tree.read_json(batch / "preds.json")
    except SourceError as exc:
        return {}, str(exc)
    if isinstance(data, list):
        data = {str(p.get("instance_id")): p for p in data if isinstance(p, dict)}
    return ({str(k): v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}), None


def _read_exit_statuses(batch: Path, tree: SafeTree) -> dict[str, str]:
    out: dict[str, str] = {}
    for path in tree.files(batch, ".yaml"):
        if not path.name.startswith("exit_statuses"):
            continue
        try:
            data = load_yaml(tree.read_text(path), path, SourceError)
        except SourceError:
            continue
        by_status = data.get("instances_by_exit_status") if isinstance(data, dict) else None
        for status, ids in (by_status or {}).items() if isinstance(by_status, dict) else ():
            for iid in ids or []:
                out[str(iid)] = str(status)
    return out


def _loader(tree: SafeTree, path: Path, session_id: str, model: str | None):
    def load() -> Trajectory | None:
        data = tree.read_json(path)
        try:
            return build_trajectory(data, session_id=session_id, model=model) if isinstance(data, dict) else None
        except (ValidationError, ValueError, TypeError) as exc:
            raise SourceError(f"cannot convert the messages to ATIF: {exc}", path) from None

    return load


def _judge(exit_status: str, submission: str | None, ev: InstanceEval | None) -> EvalResult:
    """The outcome from the exit status first, then the swebench verdict (rules in the module docstring)."""
    if exit_status not in GRADED_EXITS:
        outcome = Outcome.TIMEOUT if exit_status == "TimeExceeded" else classify_error(exit_status)
        return EvalResult(outcome, f"mini-swe-agent exit status {exit_status}")
    result = ev.result if ev is not None else not_evaluated(
        submission, "not evaluated: no swebench report for this instance")
    if exit_status == "LimitsExceeded":
        result = replace(result, reason=f"LimitsExceeded; {result.reason or result.outcome}")
    return result


def read_instance(batch: Path, tree: SafeTree, iid: str, pred: dict[str, Any], exit_statuses: dict[str, str],
                  evals_for: Callable[[str], dict[str, InstanceEval]]) -> TrialView:
    """One instance of a batch as a trial (trajectory problems -> ``infra_error`` with the reason)."""
    path: Path | None = traj_path(batch, iid)
    data: dict[str, Any] = {}
    problem = None
    if not tree.exists(path):
        problem, path = f"trajectory missing ({iid}/{iid}.traj.json)", None
    else:
        try:
            loaded = tree.read_json(path)
            data = loaded if isinstance(loaded, dict) else {}
            if not data:
                problem = f"{path}: not a mini-swe-agent trajectory object"
        except SourceError as exc:
            problem = str(exc)
    info = data.get("info") if isinstance(data.get("info"), dict) else {}
    config = info.get("config") if isinstance(info.get("config"), dict) else {}
    model_cfg = config.get("model") if isinstance(config.get("model"), dict) else {}
    model = as_str(pred.get("model_name_or_path")) or as_str(model_cfg.get("model_name")) or None
    variant = model.replace("/", "__") if model else "unknown"
    evals = evals_for(variant)
    exit_status = str(info.get("exit_status") or exit_statuses.get(iid, ""))
    submission = info.get("submission", pred.get("model_patch"))
    submission = submission if isinstance(submission, str) else None
    stats = info.get("model_stats") if isinstance(info.get("model_stats"), dict) else {}
    totals = turn_totals(parse_messages(data.get("messages"), action_regex(info))) if data else {}
    judged = EvalResult(Outcome.INFRA_ERROR, problem) if problem else _judge(exit_status, submission, evals.get(iid))
    usage = None
    if data:
        prompt, completion = totals.get("prompt_tokens"), totals.get("completion_tokens")
        usage = Usage(prompt_tokens=prompt, completion_tokens=completion, cached_tokens=totals.get("cached_tokens"),
                      total_tokens=prompt + completion if prompt is not None and completion is not None else None,
                      cost_usd=as_amount(stats.get("instance_cost")), n_llm_calls=as_count(stats.get("api_calls")))
    ev = evals.get(iid)
    extra: dict[str, Any] = {
        "layout": "miniswe", "exit_status": exit_status or None, "api_calls": stats.get("api_calls"),
        "mini_version": info.get("mini_version"), "trajectory_format": data.get("trajectory_format"),
        "n_messages": len(data["messages"]) if isinstance(data.get("messages"), list) else None,
        "patch_empty": None if submission is None else not submission.strip(),
        "swebench_run_id": ev.run_id if ev else None,
    }
    SweEval(eval_source=judged.source or None, tests_status=judged.tests_status,
            report_resolved=judged.report_resolved).write_to(extra)
    record = TrialRecord(
        trial_name=f"{iid}__{variant}__1", job=batch.name, task=iid, variant=variant, agent=AGENT, model=model,
        attempt=1, status="finished", outcome=judged.outcome, reason=judged.reason, reward=judged.reward,
        rewards=judged.rewards, usage=usage, n_turns=totals.get("n_turns"), n_tool_calls=totals.get("n_tool_calls"),
        extra=extra,
    )
    loader = _loader(tree, path, f"miniswe:{batch.name}/{iid}", model) if path is not None and not problem else None
    return TrialView(record=record, path=path.parent if path else batch / iid, layout="miniswe",
                     load_trajectory=loader)


def read_batch(batch: Path, tree: SafeTree, only: str | None = None) -> JobView:
    """Every instance of a batch: preds.json entries, trajectory dirs and exit-status entries."""
    preds, preds_problem = _read_preds(batch, tree)
    exit_statuses = _read_exit_statuses(batch, tree)
    ids = set(preds) | set(exit_statuses) | {d.name for d in tree.subdirs(batch) if tree.exists(traj_path(batch, d.name))}
    if only is not None:
        ids &= {only}
    cache: dict[str, dict[str, InstanceEval]] = {}

    def evals_for(model_dir: str) -> dict[str, InstanceEval]:
        if model_dir not in cache:
            cache[model_dir] = model_evaluations(batch, model_dir, tree)
        return cache[model_dir]

    trials = [read_instance(batch, tree, iid, preds.get(iid, {}), exit_statuses, evals_for) for iid in sorted(ids)]
    meta: dict[str, Any] = {"batch": str(batch)}
    if preds_problem:
        meta["problems"] = [preds_problem]
    return JobView(name=batch.name, path=batch, layout="miniswe", trials=trials, meta=meta)


class MiniSweReader(SourceReader):
    """mini-swe-agent batch outputs (``preds.json`` + ``<id>/<id>.traj.json``)."""

    name = "miniswe"
    aliases = ("mini-swe-agent",)

    def detect(self, path: Path) -> bool:
        try:
            return bool(_selection(path, SafeTree(path, quiet=True)))
        except SourceError:
            return False

    def trial_files(self, trial_dir: Path) -> list[Path]:
        """An instance's trajectory, the batch's preds.json and the instance's swebench reports."""
        batch, iid = trial_dir.parent, trial_dir.name
        reports = sorted(batch.glob(f"logs/run_evaluation/*/*/{iid}/report.json"))
        candidates = [traj_path(batch, iid), batch / "preds.json", *reports]
        return [trial_dir, *(p for p in candidates if p.exists())]

    def read(self, path: Path) -> list[JobView]:
        tree = SafeTree(path)
        selection = _selection(path, tree)
        if not selection:
            raise SourceError("no mini-swe-agent batch here (preds.json or <id>/<id>.traj.json)", path)
        if path.is_file() or selection[0][1] is not None:
            tree = SafeTree(selection[0][0])  # a single trajectory: its batch (preds, swebench logs) is the tree
        return [read_batch(batch, tree, only) for batch, only in selection]
