"""``trialbook migrate OLD_DIR NEW_ROOT``: the old OpenHands layout to spec 002's ``Trajectory_results`` tree."""

from __future__ import annotations

from pathlib import Path

import typer

from trialbook.cli.output import console, esc, print_json, table


def _short(target: Path, new_root: Path) -> str:
    """The target relative to NEW_ROOT (the table stays readable; --json has full paths)."""
    try:
        return str(target.relative_to(new_root))
    except ValueError:
        return str(target)


def register(app: typer.Typer) -> None:
    """Add the ``migrate`` command to ``app``."""

    @app.command("migrate")
    def migrate_cmd(
        old_dir: Path = typer.Argument(..., help="Old layout: outputs/ (or a dataset, agent or run folder below it)"),
        new_root: Path = typer.Argument(..., help="Where Trajectory_results/ is created (or that dir itself)"),
        dry_run: bool = typer.Option(False, "--dry-run", help="Print the planned copies; write nothing"),
        json_out: bool = typer.Option(False, "--json", help="Print the plan as JSON"),
    ) -> None:
        """Copy old OpenHands run folders into Trajectory_results/{Benchmark}/{Instance}/{Model}/Run{K}/.

        The source is only read; existing Run dirs are never overwritten (the command stops
        before writing anything). maxiter, version and the source path are recorded in each
        copied metadata.json under "trialbook_migration".
        """
        from trialbook.exports.migrate import migrate

        plan = migrate(old_dir, new_root, dry_run=dry_run)
        if json_out:
            print_json({**plan.to_dict(), "dry_run": dry_run})
            return
        rows = [(r.source.name, r.instance_id, r.benchmark, r.model_key, f"Run{r.run}",
                 len(r.copies) + 2 + (r.report is not None), _short(r.target, new_root)) for r in plan.runs]
        title = f"{'Planned' if dry_run else 'Migrated'}: {len(plan.runs)} Run dir(s) from {old_dir}"
        report = table(title, ["source folder", "instance", "benchmark", "model", "run", "files", "target"], rows)
        report.columns[-1].overflow = "fold"
        console.print(report)
        for warning in plan.warnings:
            console.print(f"[yellow]warning:[/] {esc(warning)}", highlight=False)
        if dry_run:
            console.print("dry run: nothing was written", style="dim")
