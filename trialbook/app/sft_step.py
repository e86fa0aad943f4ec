"""The ``sft`` post-run step: convert a trajgen job when ``sft_conversion.enabled`` is true."""

from __future__ import annotations

from typing import Any

from trialbook.run.scheduler import JobOutcome, JobSetup
from trialbook.sft.job import convert_job, options_from_config


def sft_step(setup: JobSetup, outcome: JobOutcome) -> dict[str, Any]:
    """Write ``sft_data_dir/<job>/`` (im.jsonl, lf.json, lf.stats.json, dataset_info.json, lf_train.yaml)."""
    cfg = setup.config
    if not cfg.sft_conversion.enabled:
        return {"skipped": "sft_conversion.enabled is false"}
    rel = cfg.runtime_info.output.sft_data_dir or "artifacts/sft_data"
    out = setup.block.root / rel / outcome.job_name
    [result] = convert_job(outcome.job_dir, layout="native", out=out,
                           options=options_from_config(cfg.sft_conversion, setup.block.root), overwrite=True,
                           token_cache=setup.block.token_cache)
    return {"dir": str(result.out_dir), "train_config": str(result.train_config_path),
            "trajectories_in": result.trajectories_in,
            "kept": result.kept, "dropped": {k: v for k, v in result.dropped.items() if v}}
