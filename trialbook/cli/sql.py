"""``trialbook sql "SELECT ..."``: query results/index.db, read-only, within a time limit and a row cap."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import typer

from trialbook.cli.indexing import reported_warnings
from trialbook.cli.output import console, err_console, print_json, table
from trialbook.errors import TrialbookError
from trialbook.index.access import open_for_query
from trialbook.index.db import QUERY_MAX_ROWS, QUERY_TIMEOUT_S, run_limited_query, table_columns
from trialbook.index.locate import lookup_context


def _shown(value: object) -> object:
    """A value as printed: a blob as its SQL literal ``X'0A1B'`` (JSON has no bytes; no terminal garbage)."""
    return f"X'{value.hex().upper()}'" if isinstance(value, bytes) else value


def _print_rows_json(columns: list[str], rows: list[tuple]) -> None:
    """Rows as JSON objects with keys in the query's column order (not sorted)."""
    data = [{c: _shown(v) for c, v in zip(columns, r, strict=True)} for r in rows]
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode("utf-8") + "\n")


def register(app: typer.Typer) -> None:
    """Add the ``sql`` command to ``app``."""
    @app.command("sql")
    def sql_cmd(
        query: str = typer.Argument(None, help="One SQL statement, e.g. \"SELECT job_name, n_trials FROM all_jobs\""),
        tables: bool = typer.Option(False, "--tables", help="List the tables and views and their columns"),
        json_out: bool = typer.Option(False, "--json", help="Print rows as a JSON list of objects"),
        timeout: float = typer.Option(QUERY_TIMEOUT_S, "--timeout", min=0.1, help="Stop the query after this many seconds"),
        max_rows: int = typer.Option(QUERY_MAX_ROWS, "--max-rows", min=1, help="Return at most this many rows"),
        no_refresh: bool = typer.Option(False, "--no-refresh", help="Query the index as it is (no reindex first)"),
        block_dir: Path = typer.Option(None, "--block", "-b", help="Block directory (default: here)"),
        db: Path = typer.Option(None, "--db", help="Index database (default: <block>/results/index.db)"),
    ) -> None:
        """Run a read-only SQL query on the index; --tables lists what there is to query.

        Tables: all_jobs, all_trials (every layout); views in the Pier results format's names: pier_jobs,
        pier_trials (Pier/Harbor jobs) and experiments, runs, variants, tasks, trials (legacy runs);
        see docs/results-index.md.
        PRAGMA table_info(NAME) works too.
        """
        if not tables and not query:
            raise TrialbookError("give a query, or --tables to see what there is to query")
        _, db_path, roots = lookup_context(block_dir, db)
        with reported_warnings():
            conn = open_for_query(db_path, roots, refresh_first=not no_refresh)
        try:
            if tables:
                described = table_columns(conn)
                if json_out:
                    print_json({name: {"type": kind, "columns": cols} for name, (kind, cols) in described.items()})
                else:
                    t = table(None, ["name", "type", "columns"],
                              [(name, kind, ", ".join(cols)) for name, (kind, cols) in described.items()])
                    t.columns[2].overflow = "fold"
                    console.print(t)
                return
            result = run_limited_query(conn, query, timeout_s=timeout, max_rows=max_rows)
        finally:
            conn.close()
        note = result.truncated
        if json_out:
            _print_rows_json(result.columns, result.rows)
            if note:
                err_console.print(f"note: {note}", highlight=False)
            return
        console.print(table(None, result.columns, [tuple(_shown(v) for v in r) for r in result.rows]))
        console.print(f"{len(result.rows)} row(s)" + (f"; {note}" if note else ""), style="dim")
