"""What of a block goes to the store, unit by unit: finished trials, a job's own files, its SFT
data and the block's archives (layout: :mod:`trialbook.layout.store_paths`).

Only finished trials are pushed (a cancelled one runs again on resume, and is pushed then).
Every unit is pushed by :func:`trialbook.store.upload.push_unit`, so pushing a job again
uploads only what is missing or changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from trialbook.errors import TrialbookError
from trialbook.jsonio import read_json
from trialbook.layout import store_paths as keys
from trialbook.layout.paths import BlockPaths, JobPaths
from trialbook.model.outcome import Outcome
from trialbook.model.trial import TrialRecord
from trialbook.store.fs import Store
from trialbook.store.manifest import walk_files
from trialbook.store.upload import UnitResult, push_unit

_RUN_DIR = re.compile(r"^run_\d+$")


@dataclass
class PushReport:
    """What pushing a job did, unit by unit."""

    store: str
    job: str
    units: list[UnitResult] = field(default_factory=list)

    @property
    def failed(self) -> list[UnitResult]:
        return [u for u in self.units if u.state == "failed"]

    def totals(self) -> dict[str, int]:
        trials = [u for u in self.units if u.unit.startswith("trial:")]
        return {
            "units": len(self.units),
            "trials": len(trials),
            "trials_in_store": sum(1 for u in trials if u.state in ("uploaded", "present")),
            "uploaded_files": sum(u.uploaded for u in self.units),
            "uploaded_bytes": sum(u.uploaded_bytes for u in self.units),
            "files_already_there": sum(u.already for u in self.units),
            "removed_objects": sum(u.removed for u in self.units),
            "failed": len(self.failed),
        }


def finished_record(trial_dir: Path) -> TrialRecord | None:
    """The trial's record when it finished with an outcome other than ``cancelled``."""
    try:
        rec = TrialRecord.model_validate(read_json(trial_dir / "trial.json"))
    except (TrialbookError, ValidationError, OSError):
        return None
    if rec.status != "finished" or rec.outcome in (None, Outcome.CANCELLED):
        return None
    return rec


def push_trial(store: Store, job: str, trial_dir: Path, retries: int = 3) -> UnitResult:
    """Upload one finished trial directory (all its regular files) under ``<prefix>/<job>/<trial>/``."""
    files, skipped = walk_files(trial_dir)
    return push_unit(store, f"trial:{trial_dir.name}", keys.trial_prefix(store.url, job, trial_dir.name),
                     files, retries=retries, skipped=skipped)


def push_job_files(store: Store, job: JobPaths, retries: int = 3) -> UnitResult:
    """Upload the job's own files (config snapshot, results.json, summaries, analysis/, reports/)."""
    # trials, and directories a trial started in but never recorded (a runner killed right then)
    trial_dirs = {p.name for p in job.dir.iterdir() if p.is_dir() and not p.is_symlink()
                  and any((p / sub).exists() for sub in ("trial.json", "agent", "evaluation"))} \
        if job.dir.is_dir() else set()
    hidden = {p.name for p in job.dir.iterdir() if p.name.startswith(".")} if job.dir.is_dir() else set()
    files, skipped = walk_files(job.dir, exclude_dirs=trial_dirs | hidden, exclude_files=hidden)
    return push_unit(store, "job", keys.job_prefix(store.url, job.name), files, retries=retries,
                     skipped=skipped, owns_prefix=False)


def push_sft(store: Store, job_name: str, sft_dir: Path, retries: int = 3) -> UnitResult | None:
    """Upload the job's SFT data directory, when it exists."""
    if not sft_dir.is_dir() or sft_dir.is_symlink():
        return None
    files, skipped = walk_files(sft_dir)
    return push_unit(store, "sft_data", keys.sft_prefix(store.url, job_name), files, retries=retries,
                     skipped=skipped)


def push_archives(store: Store, block: BlockPaths, retries: int = 3) -> list[UnitResult]:
    """Upload every complete archived run (``run_NNN`` with its metadata.yaml) and the archive index."""
    results: list[UnitResult] = []
    if block.archives.is_dir() and not block.archives.is_symlink():
        for run_dir in sorted(block.archives.iterdir()):
            if (_RUN_DIR.match(run_dir.name) and run_dir.is_dir() and not run_dir.is_symlink()
                    and (run_dir / "metadata.yaml").is_file()):
                files, skipped = walk_files(run_dir)
                results.append(push_unit(store, f"archive:{run_dir.name}",
                                         keys.archive_prefix(store.url, run_dir.name), files,
                                         retries=retries, skipped=skipped))
    index = block.archive_index
    if index.is_file() and not index.is_symlink():
        results.append(push_unit(store, "archive:index", keys.archive_index_prefix(store.url),
                                 {index.name: index}, retries=retries))
    return results


def push_job(store: Store, block: BlockPaths, job: JobPaths, *, sft_dir: Path | None = None,
             retries: int = 3, archives: bool = True) -> PushReport:
    """Push everything of one job: its finished trials, its own files, SFT data and the archives."""
    report = PushReport(str(store.url), job.name)
    for trial_dir in job.trial_dirs():
        if finished_record(trial_dir) is not None:
            report.units.append(push_trial(store, job.name, trial_dir, retries))
    report.units.append(push_job_files(store, job, retries))
    if sft_dir is not None:
        sft = push_sft(store, job.name, sft_dir, retries)
        if sft is not None:
            report.units.append(sft)
    if archives:
        report.units.extend(push_archives(store, block, retries))
    return report
