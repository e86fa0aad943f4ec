"""Reader of trialbook's own tree: a block, its ``artifacts/jobs/``, one job, or one trial.

Identity and outcome come from ``trial.json``; a trial dir without a readable trial.json
is listed as ``infra_error`` with the reason, never dropped.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from trialbook.errors import SourceError
from trialbook.layout.paths import JobPaths, TrialPaths
from trialbook.model.outcome import Outcome
from trialbook.model.trajectory import Trajectory, parse_trajectory
from trialbook.model.trial import TrialRecord
from trialbook.sources.base import JobView, SourceReader, TrialStream, TrialView
from trialbook.sources.native_jobs import detect as _detect
from trialbook.sources.native_jobs import is_job_dir as _is_job_dir
from trialbook.sources.native_jobs import job_dirs as _job_dirs
from trialbook.sources.native_jobs import job_kind, read_aggregate
from trialbook.sources.safe import SafeTree, utf8_name
from trialbook.yamlio import read_yaml_or_none


def _trajectory_loader(trial_dir: Path, tree: SafeTree):
    def load() -> Trajectory | None:
        paths = TrialPaths(trial_dir)
        if not tree.exists(paths.trajectory):
            return None
        return parse_trajectory(tree.read_json(paths.trajectory), paths.trajectory)

    return load


def _trajectory_data_loader(trial_dir: Path, tree: SafeTree):
    def load_data() -> Any:
        path = TrialPaths(trial_dir).trajectory
        return tree.read_json(path) if tree.exists(path) else None

    return load_data


def read_trial(trial_dir: Path, job_name: str, tree: SafeTree | None = None) -> TrialView:
    """One native trial; unreadable records become an ``infra_error`` placeholder with the reason.

    Files are read through ``tree`` (default: rooted at the job dir), so symlinks leaving the
    job are not followed.
    """
    trial_json = os.path.join(trial_dir, "trial.json")  # TrialPaths.trial_json, without pathlib in this loop
    tree = tree or SafeTree(trial_dir.parent, quiet=True)
    try:
        record = TrialRecord.model_validate(tree.read_json(trial_json))
    except (SourceError, ValidationError) as exc:
        reason = str(exc).splitlines()[0]
        record = TrialRecord(trial_name=trial_dir.name, job=job_name, task=trial_dir.name.split("__")[0],
                             variant="unknown", agent="unknown", attempt=1, status="finished",
                             outcome=Outcome.INFRA_ERROR, reason=f"unreadable trial.json: {reason}")
    return TrialView(record=record, path=trial_dir, layout="native",
                     load_trajectory=_trajectory_loader(trial_dir, tree), extra={"files": [trial_json]},
                     load_trajectory_data=_trajectory_data_loader(trial_dir, tree))


def _trial_dirs(job_dir: Path) -> list[Path]:
    """Trial directories of a native job: non-hidden subdirs holding trial.json or agent/."""
    return [job_dir / name for name in _trial_names(job_dir)]


def _trial_names(job_dir: Path) -> list[str]:
    """The names of :func:`_trial_dirs`, sorted (plain strings: a big job's listing stays small)."""
    out = []
    with os.scandir(job_dir) as it:
        for e in it:
            if e.name.startswith(".") or e.name == "analysis" or not e.is_dir():
                continue
            if not utf8_name(e.name):
                warnings.warn(f"{e.path!r}: name is not valid UTF-8; skipped", stacklevel=2)
                continue
            if os.path.exists(os.path.join(e.path, "trial.json")) or os.path.isdir(os.path.join(e.path, "agent")):
                out.append(e.name)
    out.sort()
    return out


def _experiment(job_dir: Path) -> str | None:
    """The block name: ``name:`` of the job's config snapshot, else the block directory's name."""
    data = read_yaml_or_none(job_dir / "config.yaml")
    name = data.get("name") if isinstance(data, dict) else None
    if name:
        return str(name)
    block = job_dir.parent.parent.parent
    return block.name if job_dir.parent.parent.name == "artifacts" and (block / "config.yaml").is_file() else None


def read_job(job_dir: Path, trial_dirs: list[Path] | None = None) -> JobView:
    """A native job directory (results.json/result.json give timestamps and status).

    ``trial_dirs`` restricts which trials are read (None: all), for incremental indexing.
    """
    kind = job_kind(job_dir)
    job = JobPaths(job_dir, kind=kind)
    tree = SafeTree(job_dir, quiet=True)
    agg = read_aggregate(job_dir, job.aggregate, tree)
    dirs = _trial_dirs(job_dir) if trial_dirs is None else trial_dirs
    trials = [read_trial(p, job_dir.name, tree) for p in dirs if tree.inside(p)]
    return JobView(name=job_dir.name, path=job_dir, layout="native", trials=trials, trialbook_job=True,
                   started_at=agg.get("started_at"), finished_at=agg.get("finished_at"),
                   status=agg.get("status"),
                   meta={"kind": kind, "run_id": job_dir.name, "experiment": _experiment(job_dir)})


#: A streamed job's trials are read through one tree per this many (its resolved-directory
#: caches then stay bounded, and the job's root is not resolved again for every trial).
_STREAM_TREE_TRIALS = 1024


def stream_job(job_dir: Path, names: list[str] | None = None) -> TrialStream:
    """The job at ``job_dir`` with its trials (``names``, None: all) read one at a time."""
    trees: list[SafeTree] = []
    reads = 0

    def read_one(name: str) -> TrialView | None:
        nonlocal reads
        if reads % _STREAM_TREE_TRIALS == 0:
            trees[:] = [SafeTree(job_dir, quiet=True)]
        reads += 1
        path = job_dir / name
        return read_trial(path, job_dir.name, trees[0]) if trees[0].inside(path) else None

    return TrialStream(job=read_job(job_dir, []), names=_trial_names(job_dir) if names is None else names,
                       read_trial=read_one)


class NativeReader(SourceReader):
    """trialbook's own layout (DESIGN.md section 2)."""

    name = "native"

    def evaluation_dirs(self, trial: TrialView) -> list[Path]:
        return [TrialPaths(trial.path).evaluation_dir]

    def detect(self, path: Path) -> bool:
        return _detect(path)

    def read(self, path: Path) -> list[JobView]:
        if (path / "trial.json").is_file():
            return [read_job(path.parent, [path])]
        if (path / "artifacts" / "jobs").is_dir():
            path = path / "artifacts" / "jobs"
        if _is_job_dir(path):
            return [read_job(path)]
        return [read_job(p) for p in sorted(path.iterdir()) if p.is_dir() and _is_job_dir(p)]

    def stream(self, path: Path) -> list[TrialStream]:
        if (path / "trial.json").is_file():
            return [stream_job(path.parent, [path.name])]
        return [stream_job(p) for p in _job_dirs(path)]

    def job_dirs(self, path: Path) -> list[Path]:
        return _job_dirs(path)

    def trial_dirs(self, job_dir: Path) -> list[Path]:
        return _trial_dirs(job_dir)

    def trial_files(self, trial_dir: Path) -> list[Path]:
        return [TrialPaths(trial_dir).trial_json]

    def job_files(self, job_dir: Path) -> list[Path]:
        return [job_dir / "results.json", job_dir / "result.json", job_dir / "config.yaml"]

    def read_trials(self, job_dir: Path, trial_dirs: list[Path] | None,
                    known: Mapping[str, Any] | None = None) -> JobView:
        return read_job(job_dir, trial_dirs)

    def output_files(self, trial: TrialView) -> dict[str, Path]:
        paths = TrialPaths(trial.path)
        agent = paths.agent_stderr if paths.agent_stderr.is_file() and paths.agent_stderr.stat().st_size else paths.agent_stdout
        return {"verifier_output": paths.test_output, "agent_output": agent}

    def log_files(self, trial: TrialView) -> dict[str, Path]:
        paths = TrialPaths(trial.path)
        found = {"atif": paths.trajectory, "litellm": paths.litellm_log}
        return {k: p for k, p in found.items() if p.is_file()}
