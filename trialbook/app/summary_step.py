"""The ``summary`` post-run step: after every run, summary.json / summary.md beside the job and
the block's ``results/index.db`` brought up to date for that job.

It goes through the same path as ``trialbook show <job>`` (refresh the job in the index,
summarise from it), so the files written after a run and those ``show`` writes agree.
"""

from __future__ import annotations

from typing import Any

from trialbook.app.show import show_job
from trialbook.index.locate import JobRef
from trialbook.run.scheduler import JobOutcome, JobSetup


def summary_step(setup: JobSetup, outcome: JobOutcome) -> dict[str, Any]:
    """Write the job's summary files and update the block index; returns what was written."""
    ref = JobRef(outcome.job_name, outcome.job_dir, "native")
    shown = show_job(ref, setup.block.index_db)
    s = shown.summary
    return {
        "summary_json": str(shown.written[0]) if shown.written else None,
        "index": str(setup.block.index_db) if shown.source == "index" else None,
        "n_trials": s["n_trials"],
        "overall_success_rate": s["overall_success_rate"],
        "failures": s["failures"],
        "warnings": shown.warnings,
    }
