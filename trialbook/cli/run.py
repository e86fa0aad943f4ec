"""``trialbook run``: run (or resume) the block's job with a progress bar, then print results."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import typer

from trialbook.app.pipeline import run_block
from trialbook.block.init import find_block
from trialbook.cli.output import console, err_console, esc, fail, print_json, table
from trialbook.cli.progress import JobProgress, RunTally
from trialbook.errors import ExitCode, TrialbookError
from trialbook.model.baselines import baseline_findings
from trialbook.model.trial import TrialRecord
from trialbook.run.environments.guard import job_warning
from trialbook.run.overrides import RunOverrides
from trialbook.run.scheduler import JobCancelled, JobSetup


def results_rows(agg: dict[str, Any]) -> list[tuple[Any, ...]]:
    """One row per variant: trials, resolved, success rate, mean reward, errors, pass@k."""
    rows = []
    for name, v in agg.get("variants", {}).items():
        pk = ", ".join(f"@{k}={'—' if val is None else f'{val:.3f}'}" for k, val in v["pass_at_k"].items())
        rows.append((name, v["n_trials"], v["n_success"], v["success_rate"], v["mean_reward"],
                     v["n_errors"], pk))
    return rows


def print_results(agg: dict[str, Any], job_dir: Path, records: list[TrialRecord] | None = None) -> None:
    """The job's per-variant table, its outcomes, and what the baselines say about the tasks."""
    records = records or []
    console.print(table(
        f"Job {agg['job']} ({agg['status']})",
        ["variant", "trials", "resolved", "success rate", "mean reward", "errors", "pass@k"],
        results_rows(agg),
    ))
    outcomes = ", ".join(f"{k}={v}" for k, v in agg.get("outcomes", {}).items())
    console.print(f"outcomes: {outcomes or '—'}")
    for finding in baseline_findings((r.task, r.variant, r.agent, r.outcome) for r in records):
        console.print(f"[yellow]warning:[/] {esc(finding.message)}", highlight=False, soft_wrap=True)
    console.print(f"job directory: {job_dir}")


def _config_path(block_dir: Path | None, config: Path | None) -> Path:
    """``-c FILE`` as given; else the block of ``-b DIR``, ``./config.yaml``, or the nearest parent block."""
    if config is not None:
        return config
    if block_dir is None and Path("config.yaml").is_file():
        return Path("config.yaml")
    return find_block(block_dir).config


def resume_command(config: Path, job: str | None, overrides: RunOverrides) -> str:
    """The exact command that resumes ``job``: same config and same overrides (else it is refused)."""
    config = config.resolve()
    where = ["-b", str(config.parent)] if config.name == "config.yaml" else ["-c", str(config)]
    args = ["trialbook", "run", *where, "--job", job or "<name>"]
    if overrides.attempts is not None:
        args += ["-k", str(overrides.attempts)]
    for pattern in overrides.tasks:
        args += ["--task", pattern]
    for variant in overrides.variants:
        args += ["--variant", variant]
    if overrides.models:
        args += ["--models", ",".join(overrides.models)]
    return shlex.join(args)


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run_cmd(
        block_dir: Path = typer.Option(None, "--block", "-b",
                                       help="Block directory (default: here or the nearest parent)"),
        config: Path = typer.Option(None, "--config", "-c", help="A config.yaml to run instead of the block's"),
        job: str = typer.Option(None, "--job", help="Job name; an existing job is resumed"),
        attempts: int = typer.Option(None, "--attempts", "-k", min=1, help="Attempts per task and variant"),
        concurrency: int = typer.Option(None, "--concurrency", "-n", min=1, help="Trials at once"),
        tasks: list[str] = typer.Option(None, "--task", help="Only tasks matching this glob (repeatable)"),
        variants: list[str] = typer.Option(None, "--variant", help="Only this variant (repeatable)"),
        models: str = typer.Option(None, "--models",
                                   help="VeloraHarness style: only variants of these models, e.g. gemini,claude"),
        runs: int = typer.Option(None, "--runs", min=1, help="VeloraHarness style: attempts (8 for pass@8)"),
        instances: str = typer.Option(None, "--instances", help="VeloraHarness style: only these task ids, "
                                      "comma-separated"),
        json_out: bool = typer.Option(False, "--json", help="Print the job aggregate as JSON"),
    ) -> None:
        """Run tasks x variants x attempts in the sandbox; resume a job by naming it with --job.

        Options given here override config.yaml for this job (and are recorded in its snapshot).
        """
        config = _config_path(block_dir, config)
        if attempts is not None and runs is not None and attempts != runs:
            raise TrialbookError("--attempts and --runs say different things; give one")
        picked = [*(tasks or ()), *(i.strip() for i in (instances or "").split(",") if i.strip())]
        overrides = RunOverrides(attempts=attempts or runs, concurrency=concurrency, tasks=tuple(picked),
                                 variants=tuple(variants or ()),
                                 models=tuple(m for m in (models or "").split(",") if m.strip()))
        progress = JobProgress(err_console, quiet=json_out)
        tally = RunTally()

        def on_setup(setup: JobSetup) -> None:
            warning = job_warning(setup.config.environment.limits.to_limits())
            if warning:
                err_console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
            progress.start(setup.job.name, len(setup.plans))

        def on_progress(done: int, total: int, rec) -> None:
            tally.add(rec)
            progress.update(done, total, tally)

        try:
            with progress:
                report = run_block(config, job, on_progress, on_setup, overrides)
        except JobCancelled as exc:
            name = exc.outcome.job_name if exc.outcome is not None else job
            fail(f"{exc}. Resume with: {resume_command(config, name, overrides)}", code=ExitCode.CANCELLED)
        out = report.outcome
        if json_out:
            print_json({"job": out.job_name, "job_dir": str(out.job_dir), "status": out.status,
                        "resumed": out.resumed, "skipped": out.n_skipped, "results": out.aggregate,
                        "post_run": report.steps, "post_run_errors": report.step_errors})
            return
        if out.resumed:
            console.print(f"Resumed job {out.job_name}: {out.n_skipped} trials were already done.")
        print_results(out.aggregate, out.job_dir, out.records)
        for name, err in report.step_errors.items():
            err_console.print(f"[yellow]warning:[/] post-run step {name} failed: {esc(err)}")
