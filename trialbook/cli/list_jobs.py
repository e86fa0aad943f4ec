"""``trialbook list``: the jobs in results/index.db (refreshed first), newest first."""

from __future__ import annotations

from pathlib import Path

import typer

from trialbook.cli.indexing import reported_warnings
from trialbook.cli.output import console, print_json, table
from trialbook.index.access import open_for_query
from trialbook.index.locate import lookup_context
from trialbook.index.queries import list_jobs


def register(app: typer.Typer) -> None:
    """Add the ``list`` command to ``app``."""
    @app.command("list")
    def list_cmd(
        layout: str = typer.Option(None, "--layout", "-l", help="Only jobs of this layout"),
        json_out: bool = typer.Option(False, "--json", help="Print the jobs as JSON"),
        no_refresh: bool = typer.Option(False, "--no-refresh", help="List the index as it is (no reindex first)"),
        block_dir: Path = typer.Option(None, "--block", "-b", help="Block directory (default: here)"),
        db: Path = typer.Option(None, "--db", help="Index database (default: <block>/results/index.db)"),
    ) -> None:
        """Jobs of every indexed root: layout, status, times, counted trials, success rate, errors."""
        _, db_path, roots = lookup_context(block_dir, db)
        with reported_warnings():
            conn = open_for_query(db_path, roots, refresh_first=not no_refresh)
        try:
            jobs = list_jobs(conn, layout)
        finally:
            conn.close()
        if json_out:
            print_json(jobs)
            return
        rows = [(j["job_name"], j["layout"], j["status"], j["started_at"], j["n_trials"],
                 None if j["success_rate"] is None else f"{100 * j['success_rate']:.1f}%", j["n_errors"],
                 j["experiment"]) for j in jobs]
        t = table(f"Jobs in {db_path}", ["job", "layout", "status", "started", "trials", "success",
                                         "errors", "experiment"], rows)
        t.columns[0].overflow = "fold"
        console.print(t)
