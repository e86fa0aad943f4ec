"""``trialbook push [JOB]``: upload a job of the block to its artifact store (``artifacts.store``).

Completes what a run could not: trials whose upload failed or was interrupted, the job's own
files, its SFT data and the block's archives. Only what is missing or changed is uploaded.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from trialbook.app.store_step import push_existing
from trialbook.block.init import find_block
from trialbook.cli.indexing import warn
from trialbook.cli.output import console, fail, print_json, table
from trialbook.errors import ExitCode


def register(app: typer.Typer) -> None:
    """Add the ``push`` command to ``app``."""
    @app.command("push")
    def push_cmd(
        job: str = typer.Argument(None, metavar="[JOB]", help="Job to push (default: the last job)"),
        block_dir: Path = typer.Option(None, "--block", "-b", help="Block directory (default: here)"),
        json_out: bool = typer.Option(False, "--json", help="Print what was uploaded as JSON"),
    ) -> None:
        """Upload a job's finished trials, files, SFT data and the archives to artifacts.store (resumable)."""
        block = find_block(block_dir)
        report, section = push_existing(block, job)
        totals = report.totals()
        if json_out:
            print_json({"store": report.store, "job": report.job, **totals,
                        "units": [dataclasses.asdict(u) for u in report.units]})
        else:
            console.print(table(f"Pushed {report.job} to {report.store}", ["", "value"], [
                ("trials in the store", f"{totals['trials_in_store']} of {totals['trials']} finished"),
                ("files uploaded", f"{totals['uploaded_files']} ({totals['uploaded_bytes']:,} bytes)"),
                ("files already there", totals["files_already_there"]),
                ("stale objects removed", totals["removed_objects"]),
                ("failed units", totals["failed"]),
            ]))
            for unit in report.units:
                for skipped in unit.skipped:
                    warn(f"{unit.unit}: {skipped}")
        if report.failed:
            first = report.failed[0]
            fail(f"{len(report.failed)} unit(s) not uploaded (e.g. {first.unit}: {first.error}); "
                 "run trialbook push again", code=ExitCode.UNAVAILABLE)
