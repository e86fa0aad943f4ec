"""``trialbook archives``: the block's run history from artifacts/index.yaml."""

from __future__ import annotations

from pathlib import Path

import typer

from trialbook.archive.archive import repair_index
from trialbook.archive.index import list_archives
from trialbook.block.init import find_block
from trialbook.cli.output import console, err_console, esc, print_json, table


def register(app: typer.Typer) -> None:
    @app.command("archives")
    def archives_cmd(
        block_dir: Path = typer.Option(None, "--block", "-b", help="Block directory (default: here)"),
        repair: bool = typer.Option(False, "--repair",
                                    help="Index orphan archives (left by a crash) before listing"),
        json_out: bool = typer.Option(False, "--json", help="Print entries and warnings as JSON"),
    ) -> None:
        """List archived runs (index.yaml is the history; orphan or missing archives are flagged)."""
        block = find_block(block_dir)
        actions = repair_index(block) if repair else []
        listing = list_archives(block)
        if json_out:
            print_json({"archives": listing.entries, "warnings": listing.warnings, "repaired": actions})
            return
        for action in actions:
            err_console.print(f"repair: {action}", markup=False)
        rows = []
        for e in listing.entries:
            res = e.get("results") or {}
            flag = " (orphan)" if e["orphan"] else ("" if e["present"] else " (missing)")
            rows.append((f"{e['number']}{flag}", e.get("run_id"), e.get("status"), e.get("trigger"),
                         res.get("n_trials"), res.get("n_resolved"), res.get("n_errors"),
                         res.get("success_rate")))
        console.print(table(
            f"Archived runs of {block.root}",
            ["#", "run id (job__start)", "status", "trigger", "trials", "resolved", "errors", "success"],
            rows,
        ))
        for w in listing.warnings:
            err_console.print(f"[yellow]warning:[/] {esc(w)}")
