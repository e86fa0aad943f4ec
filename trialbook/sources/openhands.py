"""Reader of the old OpenHands evaluation layout (spec 002 "Old Structure").

::

    outputs/                                        the root (or any level below it)
      {dataset}-{split}/                            -> one job, named after this dir
        {Agent}/                                    -> agent (e.g. CodeActAgent)
          {model}_maxiter_{N}_{version}-run_{K}/    -> variant = this name without "-run_K"; attempt K
            output.jsonl                            one EvalOutput line per instance -> one trial each
            metadata.json                           EvalMetadata (llm_config.model, max_iterations, dataset ...)
            eval_outputs/report.json, eval_outputs/{instance_id}/{report.json, patch.diff, ...}
            llm_completions/{instance_id}/ logs/

The task is the line's ``instance_id``. A folder name without ``run_K`` is attempt 1; one that
does not match the pattern at all is its own variant. Outcomes follow
:mod:`trialbook.sources.swe_outcome`; an instance evaluated in ``eval_outputs/`` but without
an output.jsonl line (lost or truncated) is listed as ``infra_error`` with the reason.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from trialbook.errors import SourceError
from trialbook.model.outcome import Outcome
from trialbook.model.swe_eval import SweEval
from trialbook.model.trajectory import Trajectory
from trialbook.model.trial import TrialRecord
from trialbook.sources.base import JobView, SourceReader, TrialView
from trialbook.sources.openhands_events import build_trajectory
from trialbook.sources.openhands_output import (
    LineFacts,
    LineRef,
    judge_line,
    line_facts,
    read_line,
    scan_output,
)
from trialbook.sources.safe import SafeTree
from trialbook.sources.swe_outcome import EvalResult

FOLDER_RE = re.compile(
    r"^(?P<model>.+?)_maxiter_(?P<maxiter>\d+)(?:_N)?(?:_(?P<note>.+?))??(?:[-_]run_?(?P<run>\d+))?$"
)
_VELORA_RUN_RE = re.compile(r"^Run\d+$")


@dataclass(frozen=True)
class OldRunFolder:
    """What the name and place of one old-layout run folder say."""

    path: Path
    dataset_dir: str
    agent: str
    model: str
    max_iterations: int | None
    version: str | None
    run: int
    variant: str


def parse_run_folder(path: Path) -> OldRunFolder:
    """Split ``{model}_maxiter_{N}_{version}-run_{K}`` (and its parents ``{dataset}-{split}/{Agent}``)."""
    match = FOLDER_RE.match(path.name)
    agent, dataset_dir = path.parent.name, path.parent.parent.name
    if match is None:
        return OldRunFolder(path, dataset_dir, agent, path.name, None, None, 1, path.name)
    run = int(match["run"]) if match["run"] else 1
    variant = re.sub(r"[-_]run_?$", "", path.name[: match.start("run")]) if match["run"] else path.name
    return OldRunFolder(path, dataset_dir, agent, match["model"], int(match["maxiter"]), match["note"],
                        max(run, 1), variant)


def is_run_folder(path: Path) -> bool:
    """An old-layout run folder: output.jsonl plus metadata.json or a ``_maxiter_`` name (never a velora Run dir)."""
    if _VELORA_RUN_RE.match(path.name) or not path.is_dir():
        return False
    return (path / "output.jsonl").is_file() and ((path / "metadata.json").is_file() or "_maxiter_" in path.name)


def find_run_folders(path: Path, tree: SafeTree, depth: int = 4) -> list[Path]:
    """Run folders at or under ``path`` (project dir -> outputs/ -> dataset dir -> agent dir -> run folder)."""
    return tree.find_dirs(path, is_run_folder, depth)


def dataset_and_split(folder: OldRunFolder, metadata: dict[str, Any]) -> tuple[str, str | None]:
    """The dataset name and split: from metadata.json, else from the ``{dataset}-{split}`` dir name."""
    dataset, split = metadata.get("dataset"), metadata.get("data_split")
    if isinstance(dataset, str) and dataset:
        return dataset, split if isinstance(split, str) else None
    name = folder.dataset_dir
    if "-" in name:
        head, tail = name.rsplit("-", 1)
        return head, tail
    return name, None


def read_metadata(run: Path, tree: SafeTree) -> tuple[dict[str, Any], str | None]:
    """metadata.json as a dict (empty when absent), and the problem reading it if any."""
    if not tree.exists(run / "metadata.json"):
        return {}, None
    try:
        return tree.read_json_object(run / "metadata.json"), None
    except SourceError as exc:
        return {}, str(exc)


def scan_lines(tree: SafeTree, out: Path) -> tuple[list[tuple[LineRef, dict[str, Any]]], str | None]:
    """Complete lines of output.jsonl (all read before a malformed one), and the problem met if any."""
    if not tree.exists(out):
        return [], "output.jsonl missing"
    lines: list[tuple[LineRef, dict[str, Any]]] = []
    try:
        for item in scan_output(tree, out):
            lines.append(item)
    except SourceError as exc:
        return lines, str(exc)
    return lines, None


def _loader(ref: LineRef, metadata: dict[str, Any], session_id: str):
    def load() -> Trajectory | None:
        line = read_line(ref)
        try:
            return build_trajectory(line, metadata, session_id=session_id)
        except (ValidationError, ValueError, TypeError) as exc:
            raise SourceError(f"line {ref.number}: cannot convert the history to ATIF: {exc}", ref.path) from None

    return load


def _record(folder: OldRunFolder, metadata: dict[str, Any], instance: str, facts: LineFacts | None,
            judged: EvalResult) -> TrialRecord:
    dataset, split = dataset_and_split(folder, metadata)
    llm = metadata.get("llm_config") if isinstance(metadata.get("llm_config"), dict) else {}
    extra: dict[str, Any] = {
        "layout": "openhands", "run_folder": str(folder.path), "dataset": dataset, "split": split,
        "max_iterations": metadata.get("max_iterations", folder.max_iterations), "version": folder.version,
        "run": folder.run, "has_eval_outputs": (folder.path / "eval_outputs" / instance).is_dir(),
    }
    if facts is not None:
        extra.update(history_form=facts.history_form, n_history_items=facts.n_history_items)
    SweEval(eval_source=judged.source or None, tests_status=judged.tests_status,
            report_resolved=judged.report_resolved).write_to(extra)
    model = llm.get("model") if isinstance(llm.get("model"), str) else (facts.model if facts else None)
    return TrialRecord(
        trial_name=f"{instance}__{folder.variant}__{folder.run}", job=folder.dataset_dir, task=instance,
        variant=folder.variant, agent=str(metadata.get("agent_class") or folder.agent),
        model=model or folder.model, attempt=folder.run, status="finished", outcome=judged.outcome,
        reason=judged.reason, reward=judged.reward, rewards=judged.rewards,
        started_at=facts.started_at if facts else None, finished_at=facts.finished_at if facts else None,
        duration_s=facts.duration_s if facts else None, usage=facts.usage if facts else None,
        n_turns=facts.n_turns if facts else None, n_tool_calls=facts.n_tool_calls if facts else None,
        extra=extra,
    )


def read_run_folder(run: Path, tree: SafeTree) -> list[TrialView]:
    """Every trial of one run folder: one per output.jsonl line, plus evaluated instances that lost their line."""
    folder = parse_run_folder(run)
    metadata, meta_problem = read_metadata(run, tree)
    lines, problem = scan_lines(tree, run / "output.jsonl")
    views: dict[str, TrialView] = {}
    for ref, line in lines:
        instance = str(line.get("instance_id") or f"line{ref.number}")
        facts = line_facts(line)
        judged = judge_line(facts, run, tree, instance)
        record = _record(folder, metadata, instance, facts, judged)
        if meta_problem:
            record.extra["problems"] = [meta_problem]
        session = f"openhands:{folder.dataset_dir}/{folder.agent}/{run.name}/{instance}"
        views[instance] = TrialView(record=record, path=run, layout="openhands",
                                    load_trajectory=_loader(ref, metadata, session), extra={"line": ref.number})
    for inst_dir in tree.subdirs(run / "eval_outputs"):
        if inst_dir.name in views:
            continue
        reason = "no output.jsonl line for this instance" + (f" ({problem})" if problem else "")
        judged = EvalResult(Outcome.INFRA_ERROR, reason)
        views[inst_dir.name] = TrialView(record=_record(folder, metadata, inst_dir.name, None, judged),
                                         path=run, layout="openhands")
    if not views and problem:
        warnings.warn(f"{run}: no trial could be read: {problem}", stacklevel=2)
    return list(views.values())


class OpenHandsReader(SourceReader):
    """The old OpenHands ``outputs/{dataset}-{split}/{Agent}/{model}_maxiter_...-run_K/`` layout."""

    name = "openhands"

    def detect(self, path: Path) -> bool:
        if not path.is_dir() or _VELORA_RUN_RE.match(path.name):
            return False
        try:
            return bool(find_run_folders(path, SafeTree(path, quiet=True)))
        except SourceError:
            return False

    def trial_files(self, trial_dir: Path) -> list[Path]:
        """A run folder's files that decide its trials: output.jsonl, metadata.json, the eval reports."""
        evals = trial_dir / "eval_outputs"
        reports = sorted(evals.glob("*/report.json")) if evals.is_dir() else []
        candidates = [trial_dir / "output.jsonl", trial_dir / "metadata.json", evals, evals / "report.json", *reports]
        return [trial_dir, *(p for p in candidates if p.exists())]

    def read(self, path: Path) -> list[JobView]:
        if not path.is_dir():
            raise SourceError("not a directory", path)
        tree = SafeTree(path)
        by_job: dict[Path, list[TrialView]] = {}
        for run in find_run_folders(path, tree):
            by_job.setdefault(run.parent.parent, []).extend(read_run_folder(run, tree))
        return [JobView(name=job_dir.name, path=job_dir, layout="openhands", trials=trials,
                        meta={"dataset_dir": job_dir.name})
                for job_dir, trials in sorted(by_job.items())]
