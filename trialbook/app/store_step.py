"""The artifact store in a run (``artifacts.store``), and ``trialbook push`` for an existing job.

:func:`attach_store` makes the runner upload each trial as soon as it finishes (a hook after
each trial, in a worker thread); :func:`store_step` runs after the archive and pushes the
rest: trials whose upload failed or did not happen (an earlier, interrupted run), the job's
own files, its SFT data and the block's archives. Failures are recorded in the status
(``trialbook status``) and reported as the step's error, never lose a trial.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from trialbook.config import BlockConfig, parse_config, read_yaml
from trialbook.errors import ConfigError, TrialbookError
from trialbook.layout.paths import BlockPaths, JobPaths
from trialbook.model.trial import TrialRecord
from trialbook.run.scheduler import JobOutcome, JobSetup
from trialbook.store import record
from trialbook.store.fs import Store, open_store
from trialbook.store.push import PushReport, push_job, push_trial

_log = logging.getLogger("trialbook.run")


def sft_dir(config: BlockConfig, block: BlockPaths, job_name: str) -> Path:
    """Where the sft step writes the job's SFT data."""
    return block.root / (config.runtime_info.output.sft_data_dir or "artifacts/sft_data") / job_name


def _open(config: BlockConfig) -> Store:
    assert config.artifacts.store is not None
    return open_store(config.artifacts.store, config.artifacts.options)


def attach_store(setup: JobSetup) -> bool:
    """Upload each trial when it finishes, if the config names a store; True if it does."""
    cfg = setup.config
    if cfg.artifacts.store is None:
        return False
    store = _open(cfg)  # a missing backend (no s3fs) stops the job now, not after every trial

    def upload(rec: TrialRecord) -> None:
        if rec.status != "finished" or rec.outcome is None or str(rec.outcome) == "cancelled":
            return
        result = push_trial(store, setup.job.name, setup.job.trial(rec.trial_name).dir, cfg.artifacts.retries)
        record.record_units(setup.config_path, str(store.url), setup.job.name, [result])
        if result.state == "failed":
            _log.error("trial %s: upload to %s failed (%s); recorded, `trialbook push` retries it",
                       rec.trial_name, store.url, result.error)
        else:
            _log.info("trial %s: in the store (%d file(s) uploaded, %d already there)",
                      rec.trial_name, result.uploaded, result.already)

    setup.after_trial.append(upload)
    return True


def _finish(config_path: Path, store: Store, job: JobPaths, report: PushReport) -> dict[str, Any]:
    """Record the push in the status; raise (one line) when some unit could not be uploaded."""
    n_trials = sum(1 for u in report.units if u.unit.startswith("trial:"))
    section = record.record_units(config_path, str(store.url), job.name, report.units, trials_total=n_trials)
    out = {"store": str(store.url), "job": job.name, **report.totals()}
    if report.failed:
        first = report.failed[0]
        raise TrialbookError(f"{len(report.failed)} unit(s) not uploaded to {store.url} (e.g. {first.unit}: "
                             f"{first.error}); recorded in `trialbook status`, `trialbook push` retries them")
    _log.info("store: %s", record.summary_line(section))
    return out


def store_step(setup: JobSetup, outcome: JobOutcome) -> dict[str, Any]:
    """Post-run (after the archive): push whatever of the job is not in the store yet."""
    cfg = setup.config
    if cfg.artifacts.store is None:
        return {"skipped": "artifacts.store is not set"}
    store = _open(cfg)
    report = push_job(store, setup.block, setup.job, sft_dir=sft_dir(cfg, setup.block, setup.job.name),
                      retries=cfg.artifacts.retries)
    return _finish(setup.config_path, store, setup.job, report)


def push_existing(block: BlockPaths, job_name: str | None = None) -> tuple[PushReport, dict[str, Any] | None]:
    """``trialbook push [JOB]``: push a job of the block (default: the last) to its configured store.

    Returns the report and the status section; a failed unit is in the report (not raised).
    """
    from trialbook.app.archive_step import last_job_name

    config = parse_config(read_yaml(block.config), block.config)
    if config.artifacts.store is None:
        raise ConfigError("artifacts.store is not set: name a store (s3://bucket/prefix) to push to",
                          block.config)
    jobs_dir = config.output_dir(block.root)
    name = job_name or last_job_name(block)
    job = block.job(name, kind=config.kind, jobs_dir=jobs_dir)
    if not job.dir.is_dir():
        raise ConfigError(f"job {name} not found in {jobs_dir}", not_found=True)
    store = _open(config)
    report = push_job(store, block, job, sft_dir=sft_dir(config, block, name), retries=config.artifacts.retries)
    n_trials = sum(1 for u in report.units if u.unit.startswith("trial:"))
    section = record.record_units(block.config, str(store.url), name, report.units, trials_total=n_trials)
    return report, section
