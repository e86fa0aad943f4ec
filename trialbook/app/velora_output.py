"""The VeloraHarness layout as a run output (``runtime_info.output.layout: velora``).

With it, every trial is also written, as soon as it finishes, as
``<trajectory_results_dir>/Trajectory_results/{Benchmark}/{Instance}/{Model}/Run{N}/`` by the
same writer ``trialbook export`` uses (:func:`trialbook.exports.velora.write_trial`). The native
job tree stays the source of truth (scores, analysis, SFT data and the index are derived from
it); the VeloraHarness tree is for the tools that read that layout.

Before any trial runs, the plan is checked: two variants whose models share a ``{Model}``
folder, or a Run dir that another job (or another trial) already wrote, stop the job with a
clear error, so nothing is overwritten. After the job, :func:`velora_step` writes any finished
trial whose Run dir is still missing (trials of an earlier, resumed run, or one whose write
failed) and reports what the tree holds.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from trialbook.errors import ConfigError
from trialbook.exports.velora import JobContext, config_context, write_trial, written_by
from trialbook.model.trial import TrialRecord
from trialbook.run.scheduler import JobOutcome, JobSetup
from trialbook.sources.velora import ROOT_NAME

_log = logging.getLogger("trialbook.run")


def velora_root(setup: JobSetup) -> Path:
    """The directory holding ``Trajectory_results/`` for this block."""
    out = setup.config.runtime_info.output
    return (setup.block.root / out.trajectory_results_dir).resolve()


def _context(setup: JobSetup) -> JobContext:
    """The job's context, built from the config the job runs with (the snapshot may not exist yet)."""
    return config_context(setup.raw_config, setup.job.name, name_by=setup.config.runtime_info.output.model_dirs)


def check_plan(setup: JobSetup, ctx: JobContext) -> None:
    """Refuse a plan whose Run dirs would collide with each other or with another job's."""
    by_folder: dict[str, set[str]] = {}
    for v in setup.config.variants:
        by_folder.setdefault(ctx.folder(v.name, v.model), set()).add(v.name)
    shared = {f: sorted(names) for f, names in by_folder.items() if len(names) > 1}
    if shared:
        detail = "; ".join(f"{f}: {', '.join(n)}" for f, n in sorted(shared.items()))
        raise ConfigError(f"runtime_info.output.layout velora: variants would share a model folder ({detail}); "
                          "set runtime_info.output.model_dirs: variant", setup.config_path)
    root = velora_root(setup)
    taken = []
    for plan in setup.plans:
        folder = ctx.folder(plan.variant.name, plan.variant.model)
        target = root / ROOT_NAME / ctx.benchmark / plan.task.name / folder / f"Run{plan.attempt}"
        if (target.exists() or target.is_symlink()) and written_by(target) != (setup.job.name, plan.dir_name):
            taken.append(str(target))
    if taken:
        more = f" (and {len(taken) - 2} more)" if len(taken) > 2 else ""
        raise ConfigError(f"runtime_info.output.layout velora: {len(taken)} Run dir(s) of this job already hold "
                          f"another run, e.g. {', '.join(taken[:2])}{more}; the VeloraHarness tree is never "
                          "overwritten: move them away or set runtime_info.output.trajectory_results_dir",
                          setup.config_path)


def attach_velora_output(setup: JobSetup) -> bool:
    """Make the job write its trials in the VeloraHarness layout when the config asks; True if it does."""
    if setup.config.runtime_info.output.layout != "velora":
        return False
    ctx = _context(setup)
    check_plan(setup, ctx)
    root = velora_root(setup)

    def write(record: TrialRecord) -> None:
        write_trial(setup.job.trial(record.trial_name).dir, root, ctx)

    setup.after_trial.append(write)
    return True


def velora_step(setup: JobSetup, outcome: JobOutcome) -> dict[str, Any] | None:
    """Post-run: write the finished trials still missing from the VeloraHarness tree; what it holds."""
    if setup.config.runtime_info.output.layout != "velora":
        return {"skipped": "runtime_info.output.layout is native"}
    ctx = _context(setup)
    root = velora_root(setup)
    present = written = 0
    failed: list[str] = []
    for record in outcome.records:
        if record.outcome is None or record.status != "finished":
            continue
        if written_by(ctx.target(root, record)) == (record.job, record.trial_name):
            present += 1
            continue
        try:
            write_trial(setup.job.trial(record.trial_name).dir, root, ctx)
            written += 1
        except Exception as exc:  # noqa: BLE001 - reported, the other trials are still written
            failed.append(f"{record.trial_name}: {exc}")
    if failed:
        _log.error("VeloraHarness layout: %d trial(s) not written: %s", len(failed), "; ".join(failed[:3]))
    return {"root": str(root / ROOT_NAME / ctx.benchmark), "benchmark": ctx.benchmark,
            "runs": present + written, "written_now": written, "failed": failed}
