"""``trialbook analyze-job [JOB]``: write a job's analysis/ tree (spec 000) and print its headline numbers."""

from __future__ import annotations

from pathlib import Path

import typer

from trialbook.analysis.failures import CATEGORIES
from trialbook.analysis.reports import TIERS
from trialbook.analysis.run import run_analysis
from trialbook.cli.output import console, esc, print_json, table
from trialbook.index.locate import find_job


def register(app: typer.Typer) -> None:
    @app.command("analyze-job")
    def analyze_job_cmd(
        job: str = typer.Argument(None, help="A job path in any layout, or a job name of the current block "
                                             "(default: the block's last job)"),
        gold: Path = typer.Option(None, "--gold", "-g", help="Gold metadata file keyed by task id "
                                                             "(.jsonl, .json, .csv, .tsv, .yaml)"),
        out: Path = typer.Option(None, "--out", "-o", help="Output directory (default: <job>/analysis for "
                                                           "native jobs, ./trialbook-analysis/<layout>__<job> "
                                                           "otherwise)"),
        layout: str = typer.Option(None, "--layout", "-l", help="Force a layout instead of detecting it"),
        block_dir: Path = typer.Option(None, "--block", "-b", help="Block directory for job names (default: here)"),
        json_out: bool = typer.Option(False, "--json", help="Print the headline numbers as JSON"),
    ) -> None:
        """Classify failures, tier tasks, compare resolved and unresolved trials; deterministic, no LLM."""
        result = run_analysis(find_job(job, block_dir), gold=gold, out=out, layout=layout)
        if json_out:
            print_json(result.to_json())
            return
        rows = [(CATEGORIES[c], n, f"{n / result.n_failed:.1%}" if result.n_failed else None)
                for c, n in result.primary.items() if n]
        console.print(table(f"{result.job} ({result.layout}): {result.n_failed} of {result.n_counted} counted "
                            f"trials not resolved", ["primary failure category", "trials", "share"], rows))
        for finding in result.baseline_findings:
            console.print(f"[yellow]warning:[/] {esc(finding['message'])}", highlight=False, soft_wrap=True)
        console.print(table("task difficulty tiers (solve rate over every attempt of every variant but "
                            "the oracle and nop baselines)",
                            ["tier", "tasks", "rule"],
                            [(t, n, TIERS[t]) for t, n in result.tiers.items() if n]))
        g = result.gold
        if g["n_missing"] or g["n_extra"]:
            console.print(f"gold: {g['n_with_gold']} of {g['n_job_tasks']} tasks have gold metadata; "
                          f"missing: {', '.join(g['missing'][:10]) or '-'}"
                          f"{' ...' if g['n_missing'] > 10 else ''}; extra in the gold file: {g['n_extra']}",
                          highlight=False, markup=False)
        console.print(f"Analysis written to [bold]{esc(result.path)}[/]")
