"""Reader of VeloraHarness trees (spec 002): ``Trajectory_results/{Benchmark}/{Instance}/{Model}/Run{N}/``.

::

    Trajectory_results/            the root (or any level below it, or one Run dir)
      {Benchmark}/                 RCT | SWE-hard | LST | Lite          -> one job per benchmark
        {Instance_ID}/             the task                              -> task
          {Model}/                 Gemini | Claude | GPT (model key)     -> variant
            Run{N}/                one attempt (pass@k over Runs 1..N)   -> attempt N
              output.jsonl         OpenHands EvalOutput line(s): history, metrics, error, test_result.git_patch
              metadata.json        EvalMetadata: agent_class, llm_config.model, max_iterations, dataset ...
              llm_completions/{Instance_ID}/NNNN_request.json, NNNN_response.json   one pair per LLM call
              logs/ eval_pilot2_output.jsonl
              eval_outputs/report.json, eval_outputs/{Instance_ID}/{report.json, patch.diff, test_output.txt, ...}

Outcomes follow :mod:`trialbook.sources.swe_outcome` (an ``error`` in output.jsonl, then the
report, then "not evaluated"). A Run dir whose output.jsonl is missing or has no complete line
is listed as ``infra_error`` with the reason. ``llm_completions/`` is counted (``n_llm_completions``)
and, when output.jsonl has no usage, its responses' usage is summed
(:mod:`trialbook.sources.velora_completions`). metadata.json written by ``trialbook export``
carries the original trial record under :data:`EXPORT_KEY`; its outcome, reason and rewards
win over the derived ones, so an exported job reads back exactly.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from trialbook.errors import ExitCode, SourceError, TrialbookError
from trialbook.model.outcome import Outcome
from trialbook.model.swe_eval import SweEval
from trialbook.model.trajectory import Trajectory
from trialbook.model.trial import TrialRecord
from trialbook.sources.base import JobView, SourceReader, TrialView
from trialbook.sources.coerce import as_float, as_str
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
from trialbook.sources.velora_completions import completions_usage, response_files

ROOT_NAME = "Trajectory_results"
RUN_RE = re.compile(r"^Run([1-9]\d*)$")
#: metadata.json key holding the original trial record of a tree written by ``trialbook export``.
EXPORT_KEY = "trialbook_export"
#: metadata.json key holding where a migrated run came from (``trialbook migrate``).
MIGRATION_KEY = "trialbook_migration"
_MODEL_FAMILIES: tuple[tuple[str, str], ...] = (("gemini", "Gemini"), ("claude", "Claude"), ("gpt", "GPT"))


class OverwriteRefusedError(TrialbookError):
    """A Run dir that ``migrate`` or ``export`` would write already exists (nothing was written)."""

    exit_code = ExitCode.CONFLICT


def model_key(model: str) -> str:
    """Spec 002's model key: gemini-* -> Gemini, claude-* -> Claude, gpt-* -> GPT (provider prefix ignored).

    Fallback for any other model: its name without the provider prefix (``openai/o3`` -> ``o3``),
    with characters other than letters, digits, ``.``, ``_`` and ``-`` replaced by ``-``.
    """
    name = model.strip().rsplit("/", 1)[-1]
    lowered = name.lower()
    for family, key in _MODEL_FAMILIES:
        if lowered.startswith(family) or (family == "claude" and "claude" in lowered):
            return key
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
    return safe or "unknown"


def run_dir(root: Path, benchmark: str, instance: str, model: str, run: int) -> Path:
    """``<root>/Trajectory_results/{benchmark}/{instance}/{model}/Run{run}`` (root may already be Trajectory_results)."""
    for part, what in ((benchmark, "benchmark"), (instance, "instance"), (model, "model")):
        if not part or part in {".", ".."} or "/" in part or "\\" in part or part.startswith("."):
            raise SourceError(f"unsafe {what} name {part!r} for a Trajectory_results path")
    base = root if root.name == ROOT_NAME else root / ROOT_NAME
    return base / benchmark / instance / model / f"Run{run}"


def _looks_like_run(path: Path) -> bool:
    return bool(RUN_RE.match(path.name)) and path.is_dir() and (
        (path / "output.jsonl").exists() or (path / "metadata.json").exists() or (path / "eval_outputs").is_dir()
    )


def find_run_dirs(path: Path, tree: SafeTree, depth: int = 6) -> list[Path]:
    """Every Run{N} dir at or under ``path`` (not descending into Run dirs), sorted."""
    return tree.find_dirs(path, _looks_like_run, depth)


def _has_run_below(path: Path, depth: int) -> bool:
    """True at the first Run{N} dir found within ``depth`` levels (a renamed Trajectory_results root is 4 deep)."""
    try:
        children = [e for e in os.scandir(path) if e.is_dir() and not e.name.startswith(".")]
    except OSError:
        return False
    if any(_looks_like_run(Path(e.path)) for e in children):
        return True
    return depth > 1 and any(_has_run_below(Path(e.path), depth - 1) for e in children if not e.is_symlink())


def _pick_line(tree: SafeTree, out: Path, instance: str) -> tuple[LineRef, dict[str, Any]] | None:
    chosen = None
    for ref, record in scan_output(tree, out):
        if chosen is None or str(record.get("instance_id")) == instance:
            chosen = (ref, record)
    return chosen


def _loader(ref: LineRef, metadata: dict[str, Any], session_id: str, extra: dict[str, Any]):
    def load() -> Trajectory | None:
        line = read_line(ref)
        try:
            return build_trajectory(line, metadata, session_id=session_id, extra=extra)
        except (ValidationError, ValueError, TypeError) as exc:
            raise SourceError(f"line {ref.number}: cannot convert the history to ATIF: {exc}", ref.path) from None

    return load


def _export_override(metadata: dict[str, Any], judged: EvalResult) -> tuple[EvalResult, dict[str, Any]]:
    block = metadata.get(EXPORT_KEY)
    if not isinstance(block, dict):
        return judged, {}
    try:
        outcome = Outcome(block.get("outcome"))
    except ValueError:
        return judged, {}
    result = EvalResult(outcome, as_str(block.get("reason")), as_float(block.get("reward")),
                        "metadata.json:" + EXPORT_KEY, judged.tests_status)
    return result, {**block, "derived_outcome": str(judged.outcome)}


def _rewards(value: Any) -> dict[str, float] | None:
    """An exported rewards dict, when it is one (name -> number)."""
    if not isinstance(value, dict) or not value:
        return None
    if all(isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) for k, v in value.items()):
        return {k: float(v) for k, v in value.items()}
    return None


def read_run(run: Path, tree: SafeTree) -> TrialView:
    """One Run dir as a trial; problems with its files become an ``infra_error`` with the reason."""
    model_dir, instance = run.parent.name, run.parent.parent.name
    benchmark = run.parent.parent.parent.name
    attempt = int(RUN_RE.match(run.name).group(1))  # type: ignore[union-attr]
    metadata: dict[str, Any] = {}
    problems: list[str] = []
    if tree.exists(run / "metadata.json"):
        try:
            metadata = tree.read_json_object(run / "metadata.json")
        except SourceError as exc:
            problems.append(str(exc))
    facts: LineFacts | None = None
    ref: LineRef | None = None
    out = run / "output.jsonl"
    if not tree.exists(out):
        problems.insert(0, "output.jsonl missing")
    else:
        try:
            picked = _pick_line(tree, out, instance)
            if picked is None:
                problems.insert(0, "output.jsonl has no complete line (truncated or empty)")
        except SourceError as exc:
            picked = None
            problems.insert(0, str(exc))
        if picked is not None:
            ref, facts = picked[0], line_facts(picked[1])
    if facts is None:
        judged = EvalResult(Outcome.INFRA_ERROR, "; ".join(problems))
    else:
        judged = judge_line(facts, run, tree, instance)
    judged, exported = _export_override(metadata, judged)
    llm = metadata.get("llm_config") if isinstance(metadata.get("llm_config"), dict) else {}
    model = exported.get("model") or llm.get("model") or (facts.model if facts else None)
    extra: dict[str, Any] = {
        "layout": "velora", "benchmark": benchmark, "model_key": model_dir, "run": attempt,
        "run_dir": str(run), "has_eval_outputs": (run / "eval_outputs").is_dir(),
    }
    for key in ("max_iterations", "dataset", "data_split", "agent_class"):
        if metadata.get(key) is not None:
            extra[key] = metadata[key]
    completions = response_files(run, tree, instance)
    extra["n_llm_completions"] = len(completions)
    usage = facts.usage if facts else None
    if usage is None and completions:  # output.jsonl without metrics: the completion log has the usage
        usage = completions_usage(completions, tree)
    if facts is not None:
        extra.update(history_form=facts.history_form, n_history_events=facts.n_history_items,
                     git_patch_empty=None if facts.git_patch is None else not facts.git_patch.strip())
    SweEval(eval_source=judged.source or None, tests_status=judged.tests_status,
            report_resolved=judged.report_resolved).write_to(extra)
    if facts is not None and problems:
        extra["problems"] = problems
    if exported:
        extra["derived_outcome"] = exported["derived_outcome"]
    record = TrialRecord(
        trial_name=f"{instance}__{model_dir}__{attempt}", job=benchmark, task=instance, variant=model_dir,
        agent=str(exported.get("agent") or metadata.get("agent_class") or "openhands"),
        model=model if isinstance(model, str) else None, attempt=attempt, status="finished",
        outcome=judged.outcome, reason=judged.reason, reward=judged.reward,
        rewards=_rewards(exported.get("rewards")) or judged.rewards,
        started_at=facts.started_at if facts else None, finished_at=facts.finished_at if facts else None,
        duration_s=facts.duration_s if facts else None, usage=usage,
        n_turns=facts.n_turns if facts else None, n_tool_calls=facts.n_tool_calls if facts else None,
        extra=extra,
    )
    session = f"velora:{benchmark}/{instance}/{model_dir}/Run{attempt}"
    loader = _loader(ref, metadata, session, {"velora_run": session}) if ref is not None else None
    return TrialView(record=record, path=run, layout="velora", load_trajectory=loader)


class VeloraReader(SourceReader):
    """VeloraHarness ``Trajectory_results`` trees (spec 002)."""

    name = "velora"

    def detect(self, path: Path) -> bool:
        if not path.is_dir():
            return False
        if _looks_like_run(path) or path.name == ROOT_NAME:
            return True
        for base in (path, path / "evaluation_outputs", path / "evaluation" / "evaluation_outputs"):
            if (base / ROOT_NAME).is_dir():
                return True
        if any(p.name == ROOT_NAME for p in path.resolve().parents):
            return True
        return _has_run_below(path, 4)

    def trial_files(self, trial_dir: Path) -> list[Path]:
        """A Run dir's verdict-bearing files: output.jsonl, metadata.json and every eval report."""
        instance = trial_dir.parent.parent.name
        candidates = [trial_dir / "output.jsonl", trial_dir / "metadata.json", trial_dir / "eval_outputs",
                      trial_dir / "eval_outputs" / "report.json", trial_dir / "eval_outputs" / instance / "report.json",
                      trial_dir / "eval_pilot2_output.jsonl"]
        return [trial_dir, *(p for p in candidates if p.exists())]

    def read(self, path: Path) -> list[JobView]:
        if not path.is_dir():
            raise SourceError("not a directory", path)
        tree = SafeTree(path)
        by_job: dict[Path, list[TrialView]] = {}
        for run in find_run_dirs(path, tree):
            by_job.setdefault(run.parent.parent.parent, []).append(read_run(run, tree))
        return [
            JobView(name=job_dir.name, path=job_dir, layout="velora", trials=trials,
                    meta={"benchmark": job_dir.name, "root": str(job_dir.parent)})
            for job_dir, trials in sorted(by_job.items())
        ]
