"""The ``analysis`` post-run step: analyse every eval job when it ends (``analysis.enabled``).

The gold file is ``analysis.gold`` of the block's config (relative to the block); without one
the task definitions the job ran give the metadata.
"""

from __future__ import annotations

from typing import Any

from trialbook.analysis.run import run_analysis
from trialbook.run.scheduler import JobOutcome, JobSetup
from trialbook.run.task_sources import resolve_block_path


def analysis_step(setup: JobSetup, outcome: JobOutcome) -> dict[str, Any]:
    """Write ``<job>/analysis/`` for eval blocks with analysis enabled; returns where and the counts."""
    cfg = setup.config
    if cfg.kind != "eval":
        return {"skipped": "not an eval block"}
    if not cfg.analysis.enabled:
        return {"skipped": "analysis.enabled is false"}
    gold = resolve_block_path(setup.block, cfg.analysis.gold) if cfg.analysis.gold else None
    result = run_analysis(outcome.job_dir, gold=gold, layout="native")
    return {"dir": str(result.path), "n_trials": result.n_trials, "n_failed": result.n_failed,
            "gold_missing": result.gold["n_missing"]}
