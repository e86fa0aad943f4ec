"""``trialbook monitor``: the running job's report on one screen; ``-f`` follows it (and waits for a run)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import typer
from rich.live import Live

from trialbook.block.init import find_block
from trialbook.cli.monitor_view import compact_view
from trialbook.cli.output import console, err_console, fail, print_json
from trialbook.errors import ExitCode
from trialbook.jsonio import dumps
from trialbook.layout.paths import BlockPaths
from trialbook.run.monitor import is_live, read_monitor, snapshot_from_job


def _snapshot(block: BlockPaths, job: str | None) -> dict[str, Any] | None:
    """The live report, or with ``job`` that job's report (rebuilt from its files when not running)."""
    snap = read_monitor(block)
    if job is None or (snap is not None and snap.get("job") == job):
        return snap
    from trialbook.index.locate import block_jobs_dir

    jobs_dir = block_jobs_dir(block)
    if not (jobs_dir / job).is_dir():
        fail(f"no job {job!r} in {jobs_dir}", code=ExitCode.NOT_FOUND)
    return snapshot_from_job(block.job(job, jobs_dir=jobs_dir))


def _view(snap: dict[str, Any]) -> Any:
    size = console.size
    return compact_view(snap, width=max(40, size.width), height=max(10, size.height - 1))


def _wait_for_run(block: BlockPaths, interval: float, before: dict[str, Any] | None) -> dict[str, Any]:
    """Poll until a new run reports in the block (``monitor -f`` before ``run``).

    A report other than ``before`` means a run started since (a short one may even be over).
    """
    err_console.print(f"no run in progress in {block.root}; waiting for one to start (Ctrl-C to stop)",
                      highlight=False, soft_wrap=True)
    mark = (before or {}).get("job"), (before or {}).get("updated_at")
    while True:
        snap = read_monitor(block)
        if snap is not None and (is_live(snap) or (snap.get("job"), snap.get("updated_at")) != mark):
            return snap
        time.sleep(interval)


def register(app: typer.Typer) -> None:
    @app.command("monitor")
    def monitor_cmd(
        block_dir: Path = typer.Option(None, "--block", "-b", help="Block directory (default: here)"),
        job: str = typer.Option(None, "--job", help="This job's report (default: the current or last run)"),
        follow: bool = typer.Option(False, "--follow", "-f",
                                    help="Keep showing it until the job ends; wait for a run to start"),
        interval: float = typer.Option(1.0, "--interval", help="Seconds between refreshes with --follow"),
        json_out: bool = typer.Option(False, "--json",
                                      help="Print the report as JSON (with --follow: one line per update)"),
    ) -> None:
        """Progress, throughput, ETA, errors by type, stalled, running and slowest trials, on one screen."""
        block = find_block(block_dir)
        snap = _snapshot(block, job)
        if follow and job is None and (snap is None or not is_live(snap)):
            snap = _wait_for_run(block, interval, snap)
        if snap is None:
            fail(f"no monitor report in {block.logs}: it is written while `trialbook run` runs "
                 "(monitor -f waits for one)", code=ExitCode.NOT_FOUND)
        if not follow:
            print_json(snap) if json_out else console.print(_view(snap))
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
                snap = _snapshot(block, job) or snap
        with Live(_view(snap), console=console, auto_refresh=False) as live:
            while is_live(snap):
                time.sleep(interval)
                snap = _snapshot(block, job) or snap
                live.update(_view(snap), refresh=True)
