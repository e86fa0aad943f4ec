"""Archiving as a post-run step of ``trialbook run``, and on demand for an existing job.

The step is registered as ``archive`` and always runs last (``FINAL_STEPS`` in
:mod:`trialbook.app.pipeline`), so the archive's session log records the other steps. An
interrupted (cancelled) run is archived too, with status ``cancelled``. After archiving,
config.yaml's ``status`` records ``last_run_id`` and ``last_archive``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from trialbook.archive.archive import ArchiveResult, RunInfo, create_archive, make_run_id
from trialbook.archive.metadata import secret_literals
from trialbook.block.jobs import last_job_dir
from trialbook.block.status import update_status
from trialbook.config import BlockConfig, parse_config, read_yaml
from trialbook.errors import ConfigError, SourceError, TrialbookError
from trialbook.jsonio import read_json
from trialbook.layout.archive_paths import monitor_report
from trialbook.layout.paths import BlockPaths, JobPaths
from trialbook.model.aggregate import aggregate
from trialbook.model.trial import TrialRecord, utc_now
from trialbook.run.monitor import read_monitor, report_from_job
from trialbook.run.scheduler import JobOutcome, JobSetup
from trialbook.run.session_log import read_session_log
from trialbook.run.task_sources import load_tasks, resolve_block_path
from trialbook.run.tasks import Task


def monitor_text(block: BlockPaths, job: JobPaths, stall_after_s: float = 300.0) -> str:
    """The monitor's last report for ``job``; rebuilt from the job's files if the live one is another job's."""
    try:
        snap = read_monitor(block)
    except TrialbookError:
        snap = None
    if snap is not None and snap.get("job_dir") == str(job.dir) and monitor_report(block).exists():
        return monitor_report(block).read_text(encoding="utf-8")
    return report_from_job(job, stall_after_s)


def _dataset_dir(config: BlockConfig, block: BlockPaths) -> Path | None:
    return resolve_block_path(block, config.tasks.path).resolve() if config.tasks.path else None


def _instances_file(config: BlockConfig, block: BlockPaths) -> Path | None:
    """The SWE-style instances file of the config (``tasks.instances``), None for a task directory."""
    return resolve_block_path(block, config.tasks.instances).resolve() if config.tasks.instances else None


def run_info_from_run(setup: JobSetup, outcome: JobOutcome) -> RunInfo:
    """What the post-run step archives: the run that just ended, as the runner saw it."""
    tasks: dict[str, Task] = {p.task.name: p.task for p in setup.plans}
    cfg = setup.config
    return RunInfo(
        block=setup.block, job=setup.job, kind=cfg.kind,
        run_id=make_run_id(outcome.job_name, outcome.started_at), status=outcome.status,
        started_at=outcome.started_at, finished_at=outcome.finished_at,
        aggregate=outcome.aggregate, raw_config=setup.raw_config, tasks=list(tasks.values()),
        dataset_dir=_dataset_dir(cfg, setup.block), instances_file=_instances_file(cfg, setup.block),
        session_log=read_session_log(setup.block, setup.job.name, setup.job.dir),
        monitor_md=monitor_text(setup.block, setup.job, cfg.monitor.stall_after_s),
        trigger="run",
    )


def _jobs_dir(block: BlockPaths) -> tuple[Path, str]:
    """The block's jobs directory and kind, per its current config."""
    config = parse_config(read_yaml(block.config), block.config)
    return config.output_dir(block.root), config.kind


def last_job_name(block: BlockPaths) -> str:
    """The block's last job (:func:`trialbook.block.jobs.last_job_dir`), the default of every command."""
    jobs_dir, _ = _jobs_dir(block)
    last = last_job_dir(jobs_dir)
    if last is None:
        raise ConfigError(f"no job to archive: {jobs_dir} holds no job directory", not_found=True)
    return last.name


def run_info_from_job(block: BlockPaths, job_name: str) -> RunInfo:
    """What ``trialbook archive JOB`` archives: a job as its files record it (its last run)."""
    jobs_dir, kind = _jobs_dir(block)
    job = block.job(job_name, kind=kind, jobs_dir=jobs_dir)
    if not job.config_snapshot.exists():
        raise ConfigError(f"job {job_name} not found (no {job.config_snapshot})", not_found=True)
    raw = read_yaml(job.config_snapshot)
    if not isinstance(raw, dict):
        raise ConfigError("job config snapshot is not a mapping", job.config_snapshot)
    config = parse_config(raw, job.config_snapshot)
    job = block.job(job_name, kind=config.kind, jobs_dir=jobs_dir)
    tasks: list[Task] = []
    tasks_error = None
    try:
        tasks = load_tasks(config, block)
    except TrialbookError as exc:
        tasks_error = str(exc)  # the dataset moved or changed since: record why the list is empty
    agg = _job_aggregate(job, config)
    return RunInfo(
        block=block, job=job, kind=config.kind,
        run_id=make_run_id(job.name, agg.get("started_at")), status=str(agg.get("status") or "unknown"),
        started_at=agg.get("started_at"), finished_at=agg.get("finished_at"), aggregate=agg,
        raw_config=raw, tasks=tasks, tasks_error=tasks_error, dataset_dir=_dataset_dir(config, block),
        instances_file=_instances_file(config, block),
        session_log=read_session_log(block, job.name, job.dir),
        monitor_md=monitor_text(block, job, config.monitor.stall_after_s), trigger="manual",
        extra_secrets=_current_secrets(block),
    )


def _current_secrets(block: BlockPaths) -> list[str]:
    """Literal secrets of the block's config.yaml now (the job's snapshot has them redacted already)."""
    try:
        raw = read_yaml(block.config)
    except ConfigError:
        return []
    return secret_literals(raw) if isinstance(raw, dict) else []


def _job_aggregate(job: JobPaths, config: BlockConfig) -> dict[str, Any]:
    """The job's results.json/result.json, recomputed from its trials when missing or broken."""
    try:
        data = read_json(job.aggregate)
        if isinstance(data, dict):
            return data
    except SourceError:
        pass
    records = []
    for d in job.trial_dirs():
        try:
            records.append(TrialRecord.model_validate(read_json(d / "trial.json")))
        except (TrialbookError, ValidationError):
            continue
    return aggregate(records, job=job.name, kind=config.kind, attempts=config.attempts, status="unknown",
                     dataset=config.tasks.dataset_label())


def record_in_status(config_path: Path, result: ArchiveResult) -> None:
    """Note the archive in config.yaml's status section (the live operational snapshot)."""
    update_status(config_path, {
        "last_run_id": result.run_id,
        "last_archive": result.number,
        "last_archive_dir": str(result.path.relative_to(config_path.parent)),
        "last_archived_at": utc_now(),
    })


def archive_job(block: BlockPaths, job_name: str | None = None) -> ArchiveResult:
    """Archive a job on demand (default: the last one) and record it in the status section."""
    info = run_info_from_job(block, job_name or last_job_name(block))
    result = create_archive(info)
    record_in_status(block.config, result)
    return result


def archive_step(setup: JobSetup, outcome: JobOutcome) -> dict[str, Any]:
    """Post-run step: archive the run that just ended as the next ``run_NNN``.

    A run that ran no trial (the job was already complete) is not archived again.
    """
    if outcome.resumed and outcome.n_skipped >= len(setup.plans) and outcome.status == "completed":
        return {"skipped": "no trial ran: the job was already complete, and its run is archived"}
    result = create_archive(run_info_from_run(setup, outcome))
    record_in_status(setup.config_path, result)
    return {"number": result.number, "archive": str(result.path), "run_id": result.run_id}
