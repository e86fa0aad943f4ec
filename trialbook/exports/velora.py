"""Write a native job as a VeloraHarness tree (spec 002), so Velora/OpenHands-based tools read our jobs.

For each finished trial::

    <dest>/Trajectory_results/{Benchmark}/{task}/{variant}/Run{attempt}/
      output.jsonl        one OpenHands EvalOutput line: instance_id, instruction, history (from the
                          trial's ATIF trajectory), metrics, error, test_result.git_patch, metadata
      metadata.json       EvalMetadata (agent_class, llm_config.model, dataset, details) plus the
                          original trial record under ``trialbook_export``
      llm_completions/{task}/NNNN_request.json, NNNN_response.json
                          one pair per LLM call of agent/litellm-trajectory.jsonl (:mod:`velora_files`)
      logs/               the trial's raw agent logs (litellm-trajectory.jsonl, stdout/stderr)
      eval_pilot2_output.jsonl   the verdict with its FAIL_TO_PASS / PASS_TO_PASS breakdown
      eval_outputs/report.json, eval_outputs/{task}/{report.json, patch.diff, test_output.txt,
                          eval.sh, run_instance.log}

The report is the trial's own ``evaluation/report.json`` when it has one, else derived from the
outcome for graded trials (resolved / unresolved); error outcomes get no report and an OpenHands
``error`` (``TimeoutError: ...``, ``AgentRuntimeError: ...``, ...), so the velora reader derives
the same outcome from the files alone. ``{Benchmark}`` is :func:`velora_files.benchmark_name`
(the VeloraHarness benchmark type for SWE-style instances, the dataset's own name for other
tasks) unless given. The model level is the model key of the trial's model (Gemini, Claude,
GPT; other models their name without provider prefix, see :func:`model_key`), or the variant
name with ``name_by="variant"``. Existing Run dirs are never overwritten, except by
:func:`write_trial` for a Run dir the same trial of the same job wrote earlier.

The same writer serves ``trialbook export`` (a finished job at once) and the VeloraHarness
layout as a run output (``runtime_info.output.layout: velora``: one trial at a time, as each
one finishes; see :mod:`trialbook.app.velora_output`).
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from trialbook.errors import SourceError
from trialbook.exports.atif_to_openhands import to_history
from trialbook.exports.velora_files import (
    benchmark_name,
    max_iterations,
    pilot_line,
    write_completions,
)
from trialbook.jsonio import read_json, write_json
from trialbook.layout.paths import TrialPaths
from trialbook.model.outcome import Outcome
from trialbook.model.trial import TrialRecord
from trialbook.sources.base import TrialView
from trialbook.sources.native import read_trial
from trialbook.sources.registry import get_reader
from trialbook.sources.swe_outcome import instance_entry
from trialbook.sources.velora import EXPORT_KEY, OverwriteRefusedError, model_key, run_dir
from trialbook.yamlio import read_yaml_or_none

#: OpenHands-style error class written for each error outcome (the velora reader classifies it back).
ERROR_NAMES: dict[Outcome, str] = {
    Outcome.AGENT_ERROR: "AgentError",
    Outcome.TIMEOUT: "TimeoutError",
    Outcome.INFRA_ERROR: "AgentRuntimeError",
    Outcome.CANCELLED: "Cancelled",
}
_EVAL_FILES = ("patch.diff", "test_output.txt", "eval.sh", "run_instance.log")
_AGENT_LOGS = ("litellm-trajectory.jsonl", "stdout.txt", "stderr.txt", "trajectory.json")


@dataclass
class ExportResult:
    """What an export wrote (or would write) and which trials it left out, with why."""

    job: str
    benchmark: str
    dest: Path
    written: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.job, "benchmark": self.benchmark, "dest": str(self.dest),
                "n_written": len(self.written), "written": self.written, "skipped": self.skipped}


def dataset_name(config: dict[str, Any], job_name: str) -> str:
    """The job's dataset name: its config's tasks.dataset_name / instances / path, else the job name."""
    tasks = config.get("tasks")
    if isinstance(tasks, dict):
        for key in ("dataset_name", "instances", "path"):
            if isinstance(tasks.get(key), str) and tasks[key]:
                return tasks[key]
    return job_name


@dataclass(frozen=True)
class JobContext:
    """What every Run dir of one job shares: its benchmark folder, dataset name and variants' settings."""

    job: str
    benchmark: str
    dataset: str
    variants: dict[str, dict[str, Any]]
    name_by: Literal["variant", "model"] = "model"

    def folder(self, variant: str, model: str | None) -> str:
        """The ``{Model}`` folder of a variant: the model key of its model (else of its name), or its name."""
        return variant if self.name_by == "variant" else model_key(model or variant)

    def model_dir(self, record: TrialRecord) -> str:
        """The ``{Model}`` folder of a trial."""
        return self.folder(record.variant, record.model)

    def target(self, dest: Path, record: TrialRecord) -> Path:
        """The trial's ``Run{attempt}`` dir under ``dest``."""
        return run_dir(dest, self.benchmark, record.task, self.model_dir(record), record.attempt)


def config_context(config: dict[str, Any], job_name: str, *, benchmark: str | None = None,
                   name_by: Literal["variant", "model"] = "model") -> JobContext:
    """The :class:`JobContext` of a job run with the block config ``config`` (a mapping as in config.yaml)."""
    variants = {str(v["name"]): v for v in config.get("variants") or [] if isinstance(v, dict) and "name" in v}
    return JobContext(job_name, benchmark or benchmark_name(config.get("tasks"), job_name),
                      dataset_name(config, job_name), variants, name_by)


def job_context(job_dir: Path, job_name: str, *, benchmark: str | None = None,
                name_by: Literal["variant", "model"] = "model") -> JobContext:
    """The :class:`JobContext` of a native job, from its config snapshot."""
    config = read_yaml_or_none(job_dir / "config.yaml")
    return config_context(config if isinstance(config, dict) else {}, job_name, benchmark=benchmark, name_by=name_by)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _report_entry(paths: TrialPaths, record: TrialRecord, patch: str | None) -> dict[str, Any] | None:
    """The instance report: the trial's own report.json, else one derived from a graded outcome."""
    if paths.swe_report.is_file():
        try:
            data = read_json(paths.swe_report)
        except SourceError:
            data = None
        entry = instance_entry(data, record.task)
        if entry is None and isinstance(data, dict) and len(data) == 1:
            only = next(iter(data.values()))
            entry = only if isinstance(only, dict) and "resolved" in only else None
        if entry is not None:
            return entry
    if record.outcome not in (Outcome.RESOLVED, Outcome.UNRESOLVED):
        return None
    return {
        "patch_is_None": patch is None,
        "patch_exists": bool(patch and patch.strip()),
        "patch_successfully_applied": True,
        "resolved": record.outcome == Outcome.RESOLVED,
        "tests_status": {"FAIL_TO_PASS": {"success": [], "failure": []},
                         "PASS_TO_PASS": {"success": [], "failure": []}},
        "trialbook": {"derived_from": "outcome", "reward": record.reward, "rewards": record.rewards},
    }


def _error(record: TrialRecord) -> str | None:
    name = ERROR_NAMES.get(record.outcome) if record.outcome else None
    if name is None:
        return None
    detail = f"{record.exception.type}: {record.exception.message}" if record.exception else record.reason
    return f"{name}: {detail or record.outcome}"


def _instruction(paths: TrialPaths, history: list[dict[str, Any]]) -> str:
    text = _read_text(paths.instruction)
    if text is not None:
        return text
    first = next((e for e in history if e.get("action") == "message" and e.get("source") == "user"), None)
    return str(first["args"]["content"]) if first else ""


def _metadata(record: TrialRecord, ctx: JobContext, model_dir: str, target: Path) -> dict[str, Any]:
    return {
        "agent_class": record.agent,
        "llm_config": {"model": record.model},
        "agent_config": None,
        "max_iterations": max_iterations(ctx.variants.get(record.variant)),
        "eval_output_dir": str(target),
        "start_time": record.started_at,
        "git_commit": None,
        "dataset": ctx.dataset,
        "data_split": None,
        "details": {"benchmark": ctx.benchmark, "model_key": model_dir, "run_number": record.attempt,
                    "trialbook_job": record.job, "trial_name": record.trial_name, "variant": record.variant,
                    "started_at": record.started_at, "finished_at": record.finished_at,
                    "duration_s": record.duration_s},
        "condenser_config": None,
        EXPORT_KEY: record.to_json_dict(),
    }


def written_by(target: Path) -> tuple[str, str] | None:
    """(job, trial name) of the trialbook trial that wrote the Run dir ``target``, if one did."""
    try:
        data = read_json(target / "metadata.json")
    except SourceError:
        return None
    block = data.get(EXPORT_KEY) if isinstance(data, dict) else None
    if isinstance(block, dict) and isinstance(block.get("job"), str) and isinstance(block.get("trial_name"), str):
        return block["job"], block["trial_name"]
    return None


def _fill_run(tmp: Path, view: TrialView, ctx: JobContext, model_dir: str, target: Path) -> None:
    """Write every file of one Run dir into the empty directory ``tmp``."""
    record, paths = view.record, TrialPaths(view.path)
    trajectory = view.trajectory()
    history, metrics = to_history(trajectory, record.started_at) if trajectory is not None else ([], None)
    instruction = _instruction(paths, history)
    if not history and instruction:
        history = [{"id": 0, "timestamp": record.started_at, "source": "user", "message": instruction,
                    "action": "message", "args": {"content": instruction, "file_urls": [], "image_urls": [],
                                                  "wait_for_response": False, "security_risk": -1}}]
    patch = _read_text(paths.patch) if paths.patch.is_file() else None
    metadata = _metadata(record, ctx, model_dir, target)
    error = _error(record)
    line = {"instance_id": record.task, "instruction": instruction, "metadata": metadata, "history": history,
            "metrics": metrics, "error": error, "test_result": {"git_patch": patch},
            "instance": {"instance_id": record.task, "problem_statement": instruction}}
    (tmp / "output.jsonl").write_bytes(orjson.dumps(line, default=str) + b"\n")
    write_json(tmp / "metadata.json", metadata)
    write_completions(paths.litellm_log, tmp, record.task)
    (tmp / "logs").mkdir()
    for name in _AGENT_LOGS:
        if (paths.agent_dir / name).is_file():
            shutil.copy2(paths.agent_dir / name, tmp / "logs" / name)
    entry = _report_entry(paths, record, patch)
    inst = tmp / "eval_outputs" / record.task
    copied = [n for n in _EVAL_FILES if (paths.evaluation_dir / n).is_file()]
    if entry is not None or copied:
        inst.mkdir(parents=True)
    for name in copied:
        shutil.copy2(paths.evaluation_dir / name, inst / name)
    if entry is not None:
        write_json(inst / "report.json", {record.task: entry})
        write_json(tmp / "eval_outputs" / "report.json", {record.task: entry})
        pilot = pilot_line(record.task, model_dir, record.attempt, entry, patch, error)
        (tmp / "eval_pilot2_output.jsonl").write_bytes(orjson.dumps(pilot) + b"\n")


def _write_run(view: TrialView, target: Path, ctx: JobContext, model_dir: str, *, replace_own: bool = False) -> None:
    """Write one Run dir into a temp sibling, then rename it into place.

    An existing Run dir is never overwritten, except with ``replace_own`` one that this same
    trial of this same job wrote before (a trial run again after a cancelled run).
    """
    record = view.record
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    old: Path | None = None
    try:
        _fill_run(tmp, view, ctx, model_dir, target)
        if target.exists() or target.is_symlink():
            if not replace_own or target.is_symlink() or written_by(target) != (record.job, record.trial_name):
                raise OverwriteRefusedError("already exists and was not written by this trial; "
                                            "the VeloraHarness writer never overwrites", target)
            old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(target, old)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not target.exists():
            os.rename(old, target)
            old = None
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def write_trial(trial_dir: Path, dest: Path, ctx: JobContext) -> Path:
    """Write one finished native trial as its Run dir under ``dest`` (the run-output path); returns the Run dir.

    Refuses (:class:`OverwriteRefusedError`) a Run dir another job or trial wrote.
    """
    view = read_trial(trial_dir, ctx.job)
    record = view.record
    if record.outcome is None or record.status != "finished":
        raise SourceError("trial not finished (no outcome yet)", trial_dir)
    target = ctx.target(dest, record)
    _write_run(view, target, ctx, ctx.model_dir(record), replace_own=True)
    return target


def export_job(job_dir: Path, dest: Path, *, benchmark: str | None = None,
               name_by: Literal["variant", "model"] = "model", dry_run: bool = False) -> ExportResult:
    """Export the native job at ``job_dir`` under ``dest`` (see the module docstring); refuses any overwrite."""
    jobs = [j for j in get_reader("native").read(job_dir) if j.path.resolve() == job_dir.resolve()]
    if len(jobs) != 1:
        raise SourceError("not a native job directory (config.yaml + trial dirs)", job_dir)
    job = jobs[0]
    ctx = job_context(job_dir, job.name, benchmark=benchmark, name_by=name_by)
    result = ExportResult(job.name, ctx.benchmark, dest)
    planned: list[tuple[TrialView, Path, str]] = []
    seen: dict[Path, str] = {}
    for view in job.trials:
        record = view.record
        if record.outcome is None or record.status != "finished":
            result.skipped.append({"trial": record.trial_name, "reason": "not finished (no outcome yet)"})
            continue
        model_dir = ctx.model_dir(record)
        target = ctx.target(dest, record)
        if target in seen:
            raise OverwriteRefusedError(f"trials {seen[target]} and {record.trial_name} map to the same Run dir "
                                        f"(their models share the folder {model_dir}); use name_by='variant'",
                                        target)
        seen[target] = record.trial_name
        planned.append((view, target, model_dir))
    existing = [str(t) for _, t, _ in planned if t.exists()]
    if existing:
        more = f" (and {len(existing) - 3} more)" if len(existing) > 3 else ""
        raise OverwriteRefusedError(f"{len(existing)} Run dir(s) already exist, e.g. {', '.join(existing[:3])}{more}; "
                                  "export never overwrites: choose another --to or remove them", dest)
    for view, target, model_dir in planned:
        if not dry_run:
            _write_run(view, target, ctx, model_dir)
        result.written.append({"trial": view.record.trial_name, "outcome": str(view.record.outcome),
                               "target": str(target)})
    return result
