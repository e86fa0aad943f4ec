"""``trialbook archive [JOB]`` (archive a job now), ``trialbook archive show N`` (one archive's metadata) and
``trialbook archive restore N DIR`` (a new block from one archive, to rerun its run)."""

from __future__ import annotations

from pathlib import Path

import click
import typer
import yaml
from rich.syntax import Syntax
from typer.core import TyperGroup

from trialbook.app.archive_step import archive_job
from trialbook.archive.index import archive_metadata
from trialbook.archive.restore import restore_archive
from trialbook.block.init import find_block
from trialbook.cli.output import console, esc, print_json

#: Options of the ``archive`` group that take a value (skipped when looking for a job name).
_VALUE_OPTIONS = {"--block", "-b", "--job"}


class ArchiveGroup(TyperGroup):
    """A group whose first bare word is a job name unless it names a subcommand (``show``)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        args = list(args)
        i = 0
        while i < len(args):
            arg = args[i]
            if arg == "--":
                break
            if arg.startswith("-"):
                i += 1 if "=" in arg or arg not in _VALUE_OPTIONS else 2
                continue
            if arg not in self.commands:
                args[i:i + 1] = ["--job", arg]
            break
        return super().parse_args(ctx, args)


archive_app = typer.Typer(
    cls=ArchiveGroup,
    help="Archive a job now: trialbook archive [JOB] (default: the last job). "
         "Show one archive: trialbook archive show N. "
         "Rebuild a block from one: trialbook archive restore N DIR.",
    subcommand_metavar="[JOB] | show N | restore N DIR",
)


@archive_app.callback(invoke_without_command=True)
def archive_cmd(
    ctx: typer.Context,
    job: str = typer.Option(None, "--job", help="Job to archive (also accepted as the first argument)"),
    block_dir: Path = typer.Option(None, "--block", "-b", help="Block directory (default: here)"),
    json_out: bool = typer.Option(False, "--json", help="Print the new archive's index entry as JSON"),
) -> None:
    """Archive a job as the next artifacts/archives/run_NNN and append it to artifacts/index.yaml."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"json": json_out}  # `trialbook archive --json show 3` means JSON too
        return
    result = archive_job(find_block(block_dir), job)
    if json_out:
        print_json({"number": result.number, "archive": str(result.path), "run_id": result.run_id,
                    "entry": result.entry})
        return
    console.print(f"Archived job [bold]{esc(result.entry['job'])}[/] (run {esc(result.run_id)}) as "
                  f"[bold]{result.path.name}[/]: {esc(result.path)}")


@archive_app.command("show")
def show_cmd(
    ctx: typer.Context,
    number: str = typer.Argument(..., help="Archive number: 3, 003 or run_003"),
    block_dir: Path = typer.Option(None, "--block", "-b", help="Block directory (default: here)"),
    json_out: bool = typer.Option(False, "--json", help="Print the metadata as JSON"),
) -> None:
    """Print one archive's metadata.yaml (run id, timestamps, results, repos, versions, inputs)."""
    meta = archive_metadata(find_block(block_dir), number)
    if json_out or (ctx.obj or {}).get("json"):
        print_json(meta)
        return
    text = yaml.safe_dump(meta, sort_keys=False, default_flow_style=False, allow_unicode=True)
    console.print(Syntax(text, "yaml", word_wrap=True, background_color="default"))


@archive_app.command("restore")
def restore_cmd(
    ctx: typer.Context,
    number: str = typer.Argument(..., help="Archive number: 3, 003 or run_003"),
    dest: Path = typer.Argument(..., help="New (or empty) directory for the restored block"),
    block_dir: Path = typer.Option(None, "--block", "-b", help="Block directory (default: here)"),
    json_out: bool = typer.Option(False, "--json", help="Print what was restored as JSON"),
) -> None:
    """Make a new block from one archive alone (config, scripts, copied tasks), ready to rerun the run."""
    result = restore_archive(find_block(block_dir), number, dest)
    if json_out or (ctx.obj or {}).get("json"):
        print_json(result.to_json())
        return
    what = (f"instances {result.instances}" if result.instances else f"{len(result.tasks)} task(s)")
    console.print(f"Restored [bold]{result.archive.name}[/] (run {result.run_id}, {what}) into "
                  f"[bold]{result.block}[/]")
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)
    console.print(f"Rerun it: cd {result.block} && trialbook run --job {result.job}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(archive_app, name="archive")
