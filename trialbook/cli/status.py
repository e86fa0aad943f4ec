"""``trialbook status``: print the block's live status section."""

from __future__ import annotations

from pathlib import Path

import typer

from trialbook.block.init import find_block
from trialbook.block.status import read_status
from trialbook.cli.output import console, print_json, table
from trialbook.store.record import summary_line as store_summary_line
from trialbook.yamlio import read_yaml


def register(app: typer.Typer) -> None:
    @app.command("status")
    def status_cmd(
        block_dir: Path = typer.Option(None, "--block", "-b", help="Block directory (default: here)"),
        json_out: bool = typer.Option(False, "--json", help="Print the status as JSON"),
    ) -> None:
        """Show the block's live status: current job, progress and outcome counts (config.yaml's status section is its snapshot at job start and end)."""
        block = find_block(block_dir)
        read_yaml(block.config)  # a broken config.yaml is reported here too, not only at the next run
        status = read_status(block.config)
        if json_out:
            print_json(status)
            return
        rows = []
        for key, value in status.items():
            if key == "store" and isinstance(value, dict):
                value = store_summary_line(value)
            elif isinstance(value, dict):
                value = ", ".join(f"{k}={v}" for k, v in value.items()) or "—"
            rows.append((key, value))
        console.print(table(f"Status of {block.root}", ["field", "value"], rows))
