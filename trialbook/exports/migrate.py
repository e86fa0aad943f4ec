"""Migrate the old OpenHands layout to VeloraHarness's ``Trajectory_results`` (spec 002 "Migration").

::

    outputs/{dataset}-{split}/{Agent}/{model}_maxiter_{N}_{version}-run_{K}/   (one output.jsonl line per instance)
      -> <new_root>/Trajectory_results/{Benchmark}/{instance_id}/{Model}/Run{K}/

Mapping (spec 002's table): ``{dataset}-{split}`` -> ``{Benchmark}`` by ``detect_benchmark_type``
of the dataset name (metadata.json ``dataset``, else the dir name without ``-{split}``);
``{model}_maxiter_{N}_...`` -> ``{Model}/Run{K}`` with the model key of metadata.json's
``llm_config.model`` (else the folder's model part; see :func:`~trialbook.sources.velora.model_key`);
``eval_outputs/`` unchanged inside the Run dir (its instance's part). Each Run dir gets:

* ``output.jsonl``: the instance's line, byte for byte;
* ``metadata.json``: the run's metadata.json plus ``trialbook_migration`` = where it came from
  (source folder, agent, dataset, split, max_iterations, version, run, model, model key, time);
* ``eval_outputs/report.json`` (the instance's entry) and ``eval_outputs/<id>/`` copied;
  ``llm_completions/<id>/`` copied; ``logs/`` files whose name contains the instance id copied.

The source is only read. Nothing is overwritten: if any target Run dir exists, or two sources
map to the same one, the migration stops before writing anything. Each Run dir is written to a
temp sibling and renamed into place, so an interrupted migration leaves no half Run dir.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trialbook.errors import SourceError
from trialbook.grading.benchmark_type import detect_benchmark_type
from trialbook.jsonio import write_json
from trialbook.model.trial import utc_now
from trialbook.sources.openhands import (
    OldRunFolder,
    dataset_and_split,
    find_run_folders,
    parse_run_folder,
    read_metadata,
    scan_lines,
)
from trialbook.sources.openhands_output import LineRef
from trialbook.sources.safe import SafeTree
from trialbook.sources.swe_outcome import instance_entry
from trialbook.sources.velora import MIGRATION_KEY, OverwriteRefusedError, model_key, run_dir


@dataclass
class PlannedRun:
    """One Run dir the migration writes: its source, target and the files it copies."""

    source: Path
    instance_id: str
    target: Path
    benchmark: str
    model: str
    model_key: str
    run: int
    line: LineRef | None
    report: dict[str, Any] | None
    copies: list[tuple[Path, str]] = field(default_factory=list)
    migration: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"source": str(self.source), "instance_id": self.instance_id, "target": str(self.target),
                "benchmark": self.benchmark, "model": self.model, "model_key": self.model_key, "run": self.run,
                "has_output_line": self.line is not None, "has_report": self.report is not None,
                "files": ["output.jsonl", "metadata.json", *(["eval_outputs/report.json"] if self.report else []),
                          *(rel for _, rel in self.copies)]}


@dataclass
class MigrationPlan:
    """Every planned Run dir, plus warnings about what could not be migrated."""

    old_dir: Path
    new_root: Path
    runs: list[PlannedRun] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"old_dir": str(self.old_dir), "new_root": str(self.new_root), "n_runs": len(self.runs),
                "runs": [r.to_dict() for r in self.runs], "warnings": self.warnings}


def _aggregate_report(tree: SafeTree, folder: Path) -> Any:
    path = folder / "eval_outputs" / "report.json"
    if not tree.is_file(path):
        return None
    try:
        return tree.read_json(path)
    except SourceError:
        return None


def _instance_report(tree: SafeTree, folder: Path, iid: str, aggregate: Any) -> dict[str, Any] | None:
    own = folder / "eval_outputs" / iid / "report.json"
    if tree.is_file(own):
        try:
            entry = instance_entry(tree.read_json(own), iid)
        except SourceError:
            entry = None
        if entry is not None:
            return entry
    return instance_entry(aggregate, iid)


def _copies(tree: SafeTree, folder: Path, iid: str) -> list[tuple[Path, str]]:
    """(source file, path relative to the Run dir) for the instance's eval outputs, completions and logs."""
    out: list[tuple[Path, str]] = []
    for sub in ("eval_outputs", "llm_completions"):
        base = folder / sub / iid
        if tree.is_dir(base):
            out.extend((f, f"{sub}/{iid}/{f.relative_to(base).as_posix()}") for f in _walk(tree, base))
    out.extend((f, f"logs/{f.name}") for f in tree.files(folder / "logs") if iid in f.name)
    return out


def _walk(tree: SafeTree, top: Path, depth: int = 8) -> list[Path]:
    files = list(tree.files(top))
    if depth > 0:
        for sub in tree.subdirs(top):
            if not sub.is_symlink():
                files.extend(_walk(tree, sub, depth - 1))
    return files


def _plan_folder(tree: SafeTree, folder: OldRunFolder, new_root: Path, plan: MigrationPlan) -> None:
    metadata, problem = read_metadata(folder.path, tree)
    if problem:
        plan.warnings.append(f"{problem} (metadata.json not copied)")
    dataset, split = dataset_and_split(folder, metadata)
    benchmark = detect_benchmark_type(dataset)
    llm = metadata.get("llm_config") if isinstance(metadata.get("llm_config"), dict) else {}
    model = llm.get("model") if isinstance(llm.get("model"), str) and llm.get("model") else folder.model
    key = model_key(model)
    lines, line_problem = scan_lines(tree, folder.path / "output.jsonl")
    if line_problem:
        plan.warnings.append(f"{folder.path}: {line_problem}")
    refs: dict[str, LineRef] = {}
    for ref, line in lines:
        iid = line.get("instance_id")
        if iid is None:
            plan.warnings.append(f"{ref.path}: line {ref.number} has no instance_id; not migrated")
            continue
        refs[str(iid)] = ref
    instances = dict.fromkeys(refs) | dict.fromkeys(d.name for d in tree.subdirs(folder.path / "eval_outputs"))
    aggregate = _aggregate_report(tree, folder.path)
    for iid in instances:
        try:
            target = run_dir(new_root, benchmark, iid, key, folder.run)
        except SourceError as exc:
            plan.warnings.append(f"{folder.path}: instance {iid!r} not migrated: {exc}")
            continue
        migration = {
            "tool": "trialbook migrate", "migrated_at": utc_now(), "source_run_folder": str(folder.path.resolve()),
            "source_folder_name": folder.path.name, "agent": folder.agent, "dataset": dataset, "split": split,
            "benchmark": benchmark, "model": model, "model_key": key,
            "max_iterations": metadata.get("max_iterations", folder.max_iterations), "version": folder.version,
            "run": folder.run, "instance_id": iid, "had_output_line": iid in refs,
        }
        plan.runs.append(PlannedRun(folder.path, iid, target, benchmark, model, key, folder.run, refs.get(iid),
                                    _instance_report(tree, folder.path, iid, aggregate),
                                    _copies(tree, folder.path, iid), migration, metadata))


def plan_migration(old_dir: Path, new_root: Path) -> MigrationPlan:
    """What ``migrate`` would write; raises if nothing is found or any target exists or collides."""
    if not old_dir.is_dir():
        raise SourceError("not a directory", old_dir)
    tree = SafeTree(old_dir)
    folders = find_run_folders(old_dir, tree)
    if not folders:
        raise SourceError("no old-layout OpenHands run folders here "
                          "({dataset}-{split}/{Agent}/{model}_maxiter_{N}_...-run_{K}/output.jsonl)", old_dir)
    plan = MigrationPlan(old_dir, new_root)
    for folder in folders:
        _plan_folder(tree, parse_run_folder(folder), new_root, plan)
    seen: dict[Path, PlannedRun] = {}
    for run in plan.runs:
        if run.target in seen:
            raise OverwriteRefusedError(
                f"{seen[run.target].source.name} and {run.source.name} both map instance {run.instance_id} to "
                f"{run.model_key}/Run{run.run}; migrate them to different roots", run.target)
        seen[run.target] = run
    existing = [r.target for r in plan.runs if r.target.exists()]
    if existing:
        more = f" (and {len(existing) - 3} more)" if len(existing) > 3 else ""
        raise OverwriteRefusedError(
            f"{len(existing)} target Run dir(s) already exist, e.g. {', '.join(map(str, existing[:3]))}{more}; "
            "migrate never overwrites: choose another NEW_ROOT or remove them", new_root)
    return plan


def _read_raw(ref: LineRef) -> bytes:
    try:
        with open(ref.path, "rb") as fh:
            fh.seek(ref.offset)
            return fh.read(ref.length)
    except OSError as exc:
        raise SourceError(f"cannot read: {exc.strerror}", ref.path) from None


def _write(run: PlannedRun) -> None:
    tmp = run.target.parent / f".{run.target.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        if run.line is not None:
            (tmp / "output.jsonl").write_bytes(_read_raw(run.line) + b"\n")
        write_json(tmp / "metadata.json", {**run.metadata, MIGRATION_KEY: run.migration})
        if run.report is not None:
            write_json(tmp / "eval_outputs" / "report.json", {run.instance_id: run.report})
        for source, rel in run.copies:
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)
            shutil.copystat(source, dest, follow_symlinks=True)
        if run.target.exists():
            raise OverwriteRefusedError("appeared while migrating; migrate never overwrites", run.target)
        os.rename(tmp, run.target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def migrate(old_dir: Path, new_root: Path, *, dry_run: bool = False) -> MigrationPlan:
    """Plan and (unless ``dry_run``) perform the migration; returns the plan that was carried out."""
    plan = plan_migration(old_dir, new_root)
    if not dry_run:
        for run in plan.runs:
            _write(run)
    return plan
