"""``trialbook check [TASKS...]``: every problem of the tasks at once; ``--run`` adds oracle/nop runs."""

from __future__ import annotations

from pathlib import Path

import typer

from trialbook.cli.output import console, esc, print_json, table
from trialbook.errors import ConfigError, ExitCode


def _default_dirs(block_dir: Path | None) -> tuple[list[Path], list[str], list[str]]:
    """The task dataset of the block's config (its include/exclude filters too)."""
    from trialbook.block.init import find_block
    from trialbook.config import load_config

    block = find_block(block_dir)
    config = load_config(block.config)
    if not config.tasks.path:
        raise ConfigError("check reads Harbor-format task directories; this block uses tasks.instances "
                          "(give task directories as arguments)", block.config)
    path = Path(config.tasks.path)
    return [path if path.is_absolute() else block.root / path], config.tasks.include, config.tasks.exclude


def register(app: typer.Typer) -> None:
    @app.command("check")
    def check_cmd(
        tasks: list[Path] = typer.Argument(None, metavar="[TASKS]...",
                                           help="Task directories or datasets (default: the block's tasks)"),
        run: bool = typer.Option(False, "--run", help="Also run oracle and nop once per task in the sandbox "
                                 "and report tasks the oracle fails or nop passes"),
        concurrency: int = typer.Option(4, "--concurrency", "-n", min=1, help="Trials at once with --run"),
        block_dir: Path = typer.Option(None, "--block", "-b", help="Block directory (default: here)"),
        json_out: bool = typer.Option(False, "--json", help="Print the problems as JSON"),
    ) -> None:
        """Check task directories for every problem at once, before a run finds them one per run."""
        from trialbook.run.check import check_tasks, run_baselines, task_dirs

        if tasks:
            dirs = task_dirs(list(tasks))
        else:
            roots, include, exclude = _default_dirs(block_dir)
            dirs = task_dirs(roots, include, exclude)
        problems = check_tasks(dirs)
        broken = {p.task for p in problems if p.severity == "error"}
        findings = []
        if run:
            runnable = [d for d in dirs if d.name not in broken]
            findings = run_baselines(runnable, concurrency=concurrency) if runnable else []
        failed = bool(broken) or bool(findings)
        if json_out:
            print_json({"n_tasks": len(dirs), "n_broken": len(broken),
                        "problems": [p.to_json() for p in problems],
                        "baseline_findings": [f.to_json() for f in findings], "ok": not failed})
        else:
            if problems:
                t = table(f"{len(problems)} problem(s) in {len(dirs)} task(s)", ["task", "severity", "problem"],
                          [(p.task, p.severity, p.message) for p in problems])
                t.columns[2].overflow = "fold"
                console.print(t)
            for f in findings:
                console.print(f"[yellow]{f.kind}:[/] {esc(f.message)}", highlight=False, soft_wrap=True)
            verdict = "[red]broken[/]" if failed else "[green]ok[/]"
            ran = " (oracle and nop run once each)" if run else ""
            console.print(f"{len(dirs)} tasks checked{ran}: {len(broken)} with errors, "
                          f"{len(findings)} baseline findings: {verdict}", highlight=False)
        if failed:
            raise typer.Exit(int(ExitCode.FAILED))
