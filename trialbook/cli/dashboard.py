"""``trialbook dashboard [ROOT...]``: build the static results site; ``--serve`` for a live view."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from trialbook.app.store_read import local_roots
from trialbook.cli.indexing import reported_warnings, warn
from trialbook.cli.output import console, print_json, table
from trialbook.dashboard import BuildStats, build_site, resolve_site


def _print_stats(stats: BuildStats) -> None:
    rows = [("site", f"{stats.site}/index.html"), ("index", stats.index), ("jobs", stats.jobs),
            ("trials", stats.trials),
            ("trial pages built / unchanged / removed",
             f"{stats.trials_built} / {stats.trials_unchanged} / {stats.trials_removed}"),
            ("files written", stats.files_written), ("seconds", f"{stats.seconds:.2f} (reindex {stats.reindex_s:.2f})")]
    console.print(table("Dashboard", ["", "value"], rows))


def register(app: typer.Typer) -> None:
    """Add the ``dashboard`` command to ``app``."""
    @app.command("dashboard")
    def dashboard_cmd(
        roots: list[str] = typer.Argument(None, metavar="[ROOT]...",
                                          help="More results trees to show (any layout), or store URLs "
                                               "(s3://bucket/prefix, mirrored locally); remembered by the index"),
        block_dir: Path = typer.Option(None, "--block", "-b", help="Block directory (default: here)"),
        out: Path = typer.Option(None, "--out", "-o", help="Site directory (default: <block>/dashboard/site)"),
        db: Path = typer.Option(None, "--db", help="Index database (default: <block>/results/index.db)"),
        layout: str = typer.Option(None, "--layout", "-l", help="Layout of the ROOTs given here (default: detected)"),
        serve_: bool = typer.Option(False, "--serve", help="Serve the site on 127.0.0.1 and rebuild it as jobs change"),
        port: int = typer.Option(8765, "--port", help="Port of --serve (0: any free port)"),
        interval: float = typer.Option(2.0, "--interval", help="Seconds between rebuilds under --serve"),
        workers: int = typer.Option(None, "--workers", help="Processes building trial pages (default: automatic)"),
        json_out: bool = typer.Option(False, "--json", help="Print what was built as JSON"),
    ) -> None:
        """Build the dashboard: jobs, job, trial, compare, SFT and archive pages, openable from disk."""
        with reported_warnings():
            local = local_roots(list(roots or ()))
        spec = resolve_site(block_dir, local, out, db, layout)
        if serve_:
            from trialbook.dashboard.serve import serve

            def built(stats: BuildStats) -> None:
                if json_out:
                    print_json(dataclasses.asdict(stats))
                else:
                    console.print(f"built {stats.trials_built} trial pages, {stats.files_written} files "
                                  f"in {stats.seconds:.2f} s", highlight=False)
                for w in stats.warnings:
                    warn(w)

            def ready(url: str) -> None:
                if json_out:
                    print_json({"serving": url, "site": str(spec.out)})
                else:
                    console.print(f"Serving {spec.out} at [bold]{url}[/] (Ctrl-C stops)", highlight=False)

            try:
                with reported_warnings():
                    serve(spec, port=port, interval=interval, workers=workers, on_build=built, on_ready=ready)
            except KeyboardInterrupt:
                return
            return
        with reported_warnings():
            stats = build_site(spec, workers=workers)
        for w in stats.warnings:
            warn(w)
        if json_out:
            print_json({**dataclasses.asdict(stats), "index_html": f"{stats.site}/index.html"})
            return
        _print_stats(stats)
        console.print(f"Open file://{stats.site}/index.html, or serve it: trialbook dashboard --serve", highlight=False,
                      soft_wrap=True)
