"""``trialbook reindex [ROOT...] [--full]``: update results/index.db from the block and every root.

Indexed: the block's jobs directory, its config's ``index.roots``, the ROOTs given here, and
every root the index already holds. Incremental unless ``--full``. A store URL
(``s3://bucket/prefix``) is mirrored into the local cache first and that copy is indexed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from trialbook.app.store_read import local_target
from trialbook.cli.indexing import reported_warnings, warn
from trialbook.cli.output import console, fail, print_json, table
from trialbook.errors import ExitCode
from trialbook.index.locate import lookup_context
from trialbook.index.reindex import RootSpec, reindex
from trialbook.sources.registry import detect_layout


def register(app: typer.Typer) -> None:
    """Add the ``reindex`` command to ``app``."""
    @app.command("reindex")
    def reindex_cmd(
        roots: list[str] = typer.Argument(None, metavar="[ROOT]...",
                                          help="More results trees to index (any layout), or store URLs "
                                               "(s3://bucket/prefix, mirrored locally); remembered by the index"),
        full: bool = typer.Option(False, "--full", help="Rebuild from scratch, from the block's roots and the ROOTs "
                                                        "given now (other remembered roots are dropped)"),
        layout: str = typer.Option(None, "--layout", "-l", help="Layout of the ROOTs given here (default: detected)"),
        json_out: bool = typer.Option(False, "--json", help="Print what was done as JSON"),
        block_dir: Path = typer.Option(None, "--block", "-b", help="Block directory (default: here)"),
        db: Path = typer.Option(None, "--db", help="Index database (default: <block>/results/index.db)"),
        workers: int = typer.Option(None, "--workers", "-w", min=1,
                                    help="Reader processes (default: one per CPU when thousands of trials are "
                                         "to be read, else 1); the index is the same for any number"),
    ) -> None:
        """Build results/index.db from job directories: only changed trials are read again."""
        block, db_path, specs = lookup_context(block_dir, db)
        with reported_warnings():
            for target in roots or ():
                root, mirrored = local_target(target)
                if not root.exists():
                    fail(f"{root}: not found", code=ExitCode.NOT_FOUND)
                specs.append(RootSpec(root, "native" if mirrored else layout or detect_layout(root)))
            stats = reindex(db_path, specs, full=full, workers=workers)
        for w in stats.warnings:
            warn(w)
        if json_out:
            print_json(dataclasses.asdict(stats))
            return
        rows = [("index", stats.db), ("roots", len(stats.roots)), ("jobs", stats.jobs),
                ("trials", stats.trials),
                ("jobs added / updated / unchanged / removed",
                 f"{stats.jobs_added} / {stats.jobs_updated} / {stats.jobs_unchanged} / {stats.jobs_removed}"),
                ("trials read / removed", f"{stats.trials_read} / {stats.trials_removed}"),
                ("seconds", f"{stats.seconds:.2f}"), ("mode", "full rebuild" if full or stats.rebuilt else "incremental")]
        console.print(table("Reindex", ["", "value"], rows))
