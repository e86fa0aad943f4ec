"""``trialbook monitor``: show the running job's monitor report (logs/monitor.md), live with --follow."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Group
from rich.live import Live
from rich.markdown import Markdown
from rich.text import Text

from trialbook.archive.monitor import is_live, read_monitor, render_markdown
from trialbook.block.init import find_block
from trialbook.cli.output import console, fail, print_json
from trialbook.errors import ExitCode
from trialbook.jsonio import dumps
from trialbook.layout.paths import BlockPaths


def _read(block: BlockPaths) -> dict[str, Any]:
    snap = read_monitor(block)
    if snap is None:
        fail(f"no monitor report in {block.logs}: it is written while `trialbook run` runs",
             code=ExitCode.NOT_FOUND)
    return snap


def _view(snap: dict[str, Any]) -> Group:
    parts: list[Any] = [Markdown(render_markdown(snap))]
    if snap.get("state") == "running" and not is_live(snap):
        parts.append(Text(f"the runner (pid {snap.get('pid')}) is gone: this report is stale",
                          style="yellow"))
    return Group(*parts)


def register(app: typer.Typer) -> None:
    @app.command("monitor")
    def monitor_cmd(
        block_dir: Path = typer.Option(None, "--block", "-b", help="Block directory (default: here)"),
        follow: bool = typer.Option(False, "--follow", "-f", help="Keep showing it until the job ends"),
        interval: float = typer.Option(1.0, "--interval", help="Seconds between refreshes with --follow"),
        json_out: bool = typer.Option(False, "--json",
                                      help="Print the report as JSON (with --follow: one line per update)"),
    ) -> None:
        """Progress, throughput, ETA, errors by type, slowest and stalled trials of the current job."""
        block = find_block(block_dir)
        snap = _read(block)
        if json_out and not follow:
            print_json(snap)
            return
        if json_out:
            last: dict[str, Any] | None = None
            while True:
                if snap != last:
                    last = snap
                    sys.stdout.write(dumps(snap, indent=False).decode() + "\n")  # JSON lines
                    sys.stdout.flush()
                if not is_live(snap):
                    return
                time.sleep(interval)
                snap = _read(block)
        if not follow:
            console.print(_view(snap))
            return
        with Live(_view(snap), console=console, auto_refresh=False) as live:
            while is_live(snap):
                time.sleep(interval)
                snap = _read(block)
                live.update(_view(snap), refresh=True)
