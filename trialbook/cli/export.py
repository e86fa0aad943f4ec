"""``trialbook export JOB --layout velora --to DIR``: a native job as a VeloraHarness tree."""

from __future__ import annotations

from pathlib import Path

import typer

from trialbook.cli.output import console, esc, fail, print_json, table
from trialbook.errors import ExitCode

LAYOUTS = ("velora",)


def resolve_job_dir(job: str) -> Path:
    """JOB as a trialbook job directory (:func:`trialbook.index.locate.find_job`, as every command)."""
    from trialbook.index.locate import find_job
    from trialbook.sources.registry import get_reader

    path = find_job(job)
    if not get_reader("native").detect(path):
        fail(f"{path}: not a job trialbook ran (export converts trialbook's own jobs)", code=ExitCode.USAGE)
    return path


def register(app: typer.Typer) -> None:
    """Add the ``export`` command to ``app``."""

    @app.command("export")
    def export_cmd(
        job: str = typer.Argument(..., help="A native job directory, or a job name of the current block"),
        to: Path = typer.Option(..., "--to", help="Destination; Trajectory_results/ is created inside"),
        layout: str = typer.Option("velora", "--layout", help="Target layout (velora)"),
        benchmark: str = typer.Option(None, "--benchmark",
                                      help="Benchmark dir name (default: detected from the job's dataset name)"),
        name_by: str = typer.Option("model", "--name-by",
                                    help="Model-level dir: the VeloraHarness 'model' key (Gemini/Claude/GPT, other "
                                         "models their own name), or the 'variant' name"),
        dry_run: bool = typer.Option(False, "--dry-run", help="List what would be written; write nothing"),
        json_out: bool = typer.Option(False, "--json", help="Print the result as JSON"),
    ) -> None:
        """Write a native job in the VeloraHarness layout: Trajectory_results/{Benchmark}/{task}/{Model}/Run{attempt}/ (never overwrites)."""
        if layout not in LAYOUTS:
            fail(f"unknown export layout {layout!r}; known: {', '.join(LAYOUTS)}", code=ExitCode.USAGE)
        if name_by not in ("variant", "model"):
            fail("--name-by must be 'variant' or 'model'", code=ExitCode.USAGE)
        from trialbook.exports.velora import export_job

        result = export_job(resolve_job_dir(job), to, benchmark=benchmark, name_by=name_by,  # type: ignore[arg-type]
                            dry_run=dry_run)
        if json_out:
            print_json({**result.to_dict(), "dry_run": dry_run})
            return
        rows = [(w["trial"], w["outcome"], w["target"]) for w in result.written]
        title = f"{'Would export' if dry_run else 'Exported'} job {result.job}: {len(rows)} trial(s), " \
                f"benchmark {result.benchmark}"
        report = table(title, ["trial", "outcome", "Run dir"], rows)
        report.columns[-1].overflow = "fold"
        console.print(report)
        for skipped in result.skipped:
            console.print(f"[yellow]skipped[/] {esc(skipped['trial'])}: {esc(skipped['reason'])}", highlight=False)
