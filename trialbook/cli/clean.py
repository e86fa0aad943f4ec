"""``trialbook clean``: remove the block's gitignored runtime outputs (never archives or index.yaml)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from trialbook.archive.clean import clean_block, clean_images
from trialbook.cli.output import console, print_json
from trialbook.errors import ExitCode


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def register(app: typer.Typer) -> None:
    @app.command("clean")
    def clean_cmd(
        block_dir: Path = typer.Option(Path("."), "--block", "-b",
                                       help="The block directory itself (default: here)"),
        repos: bool = typer.Option(False, "--repos", help="Also remove repos/"),
        dry_run: bool = typer.Option(False, "--dry-run", help="Print what would be removed; remove nothing"),
        yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before removing (on a terminal it asks)"),
        json_out: bool = typer.Option(False, "--json", help="Print what was removed as JSON"),
        images: bool = typer.Option(False, "--images",
                                    help="Only remove the container images trialbook built (docker/podman)"),
    ) -> None:
        """Remove jobs, logs, litellm, sft_data, dashboard site and cache (--repos: repos/ too).

        artifacts/archives/, artifacts/index.yaml and config.yaml are never touched. On a terminal
        it lists what would go and asks first; --yes skips the question. --images removes only the
        task images the docker/podman environments built (label trialbook.managed=1), and no file.
        """
        if images:
            names = clean_images(block_dir, dry_run=dry_run)
            if json_out:
                print_json({"dry_run": dry_run, "images": names})
                return
            for name in names:
                console.print(f"{'would remove' if dry_run else 'removed'} image {name}", highlight=False)
            if not names:
                console.print("no trialbook image to remove", highlight=False)
            return
        if not (yes or dry_run or json_out) and sys.stdin.isatty() and console.is_terminal:
            planned = clean_block(block_dir, repos=repos, dry_run=True)
            if not planned:
                console.print(f"nothing to clean in {block_dir.resolve()}", highlight=False, soft_wrap=True)
                return
            total = sum(r.n_files for r in planned)
            listing = ", ".join(f"{r.path.name}/" for r in planned)
            if not typer.confirm(f"Remove {listing} ({total} files)?", default=False):
                console.print("nothing removed")
                raise typer.Exit(int(ExitCode.OK))
        removed = clean_block(block_dir, repos=repos, dry_run=dry_run)
        if json_out:
            print_json({"dry_run": dry_run, "removed": [r.to_json() for r in removed]})
            return
        verb = "would remove" if dry_run else "removed"
        root = block_dir.resolve()
        for r in removed:
            shown = r.path.relative_to(root) if root in r.path.parents else r.path
            console.print(f"{verb} {shown}/ ({r.what}: {r.n_files} files, {_size(r.n_bytes)})",
                          highlight=False, soft_wrap=True)
        if not removed:
            console.print(f"nothing to clean in {root}", highlight=False, soft_wrap=True)
