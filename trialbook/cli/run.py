"""``trialbook run``: run (or resume) the block's job with a progress bar, then print results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from trialbook.block.init import find_block
from trialbook.cli.output import console, err_console, fail, print_json, table
from trialbook.errors import ExitCode
from trialbook.run.overrides import RunOverrides
from trialbook.run.pipeline import run_block
from trialbook.run.scheduler import JobCancelled, JobSetup


def results_rows(agg: dict[str, Any]) -> list[tuple[Any, ...]]:
    """One row per variant: trials, resolved, success rate, mean reward, errors, pass@k."""
    rows = []
    for name, v in agg.get("variants", {}).items():
        pk = ", ".join(f"@{k}={'—' if val is None else f'{val:.3f}'}" for k, val in v["pass_at_k"].items())
        rows.append((name, v["n_trials"], v["n_success"], v["success_rate"], v["mean_reward"],
                     v["n_errors"], pk))
    return rows


def print_results(agg: dict[str, Any], job_dir: Path) -> None:
    console.print(table(
        f"Job {agg['job']} ({agg['status']})",
        ["variant", "trials", "resolved", "success rate", "mean reward", "errors", "pass@k"],
        results_rows(agg),
    ))
    outcomes = ", ".join(f"{k}={v}" for k, v in agg.get("outcomes", {}).items())
    console.print(f"outcomes: {outcomes or '—'}")
    console.print(f"job directory: {job_dir}")


def _config_path(block_dir: Path | None, config: Path | None) -> Path:
    """``-c FILE`` as given; else the block of ``-b DIR``, ``./config.yaml``, or the nearest parent block."""
    if config is not None:
        return config
    if block_dir is None and Path("config.yaml").is_file():
        return Path("config.yaml")
    return find_block(block_dir).config


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
        json_out: bool = typer.Option(False, "--json", help="Print the job aggregate as JSON"),
    ) -> None:
        """Run tasks x variants x attempts in the sandbox; resume a job by naming it with --job.

        Options given here override config.yaml for this job (and are recorded in its snapshot).
        """
        config = _config_path(block_dir, config)
        overrides = RunOverrides(attempts=attempts, concurrency=concurrency,
                                 tasks=tuple(tasks or ()), variants=tuple(variants or ()))
        progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"), TimeElapsedColumn(),
            console=err_console, disable=json_out or not err_console.is_terminal, transient=False,
        )
        bar: dict[str, Any] = {}
        counts: dict[str, int] = {}

        def on_setup(setup: JobSetup) -> None:
            bar["id"] = progress.add_task(f"job {setup.job.name}", total=len(setup.plans), counts="")

        def on_progress(done: int, total: int, rec) -> None:
            if rec is not None and rec.outcome:
                counts[str(rec.outcome)] = counts.get(str(rec.outcome), 0) + 1
            progress.update(bar["id"], completed=done,
                            counts=" ".join(f"{k}={v}" for k, v in sorted(counts.items())))

        try:
            with progress:
                report = run_block(config, job, on_progress, on_setup, overrides)
        except JobCancelled as exc:
            fail(str(exc), code=ExitCode.CANCELLED)
        out = report.outcome
        if json_out:
            print_json({"job": out.job_name, "job_dir": str(out.job_dir), "status": out.status,
                        "resumed": out.resumed, "skipped": out.n_skipped, "results": out.aggregate,
                        "post_run": report.steps, "post_run_errors": report.step_errors})
            return
        if out.resumed:
            console.print(f"Resumed job {out.job_name}: {out.n_skipped} trials were already done.")
        print_results(out.aggregate, out.job_dir)
        for name, err in report.step_errors.items():
            err_console.print(f"[yellow]warning:[/] post-run step {name} failed: {err}")
