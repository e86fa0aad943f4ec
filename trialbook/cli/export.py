"""``trialbook export``: Parquet tables, Hugging Face / TRL datasets, or a native job as a VeloraHarness tree.

``--format parquet|hf|trl [TARGET...] [--out DIR]`` (see :mod:`trialbook.app.export_step`);
``[--layout velora] JOB --to DIR`` writes the VeloraHarness layout (:mod:`trialbook.exports.velora`).
"""

from __future__ import annotations

from pathlib import Path

import typer

from trialbook.cli.output import console, esc, fail, print_json, table
from trialbook.errors import ExitCode

LAYOUTS = ("velora",)
FORMATS = ("parquet", "hf", "trl", "velora")


def resolve_job_dir(job: str | None) -> Path:
    """JOB as a trialbook job directory (:func:`trialbook.index.locate.find_job`, as every command)."""
    from trialbook.index.locate import find_job
    from trialbook.sources.registry import get_reader

    path = find_job(job)
    if not get_reader("native").detect(path):
        fail(f"{path}: not a job trialbook ran (export converts trialbook's own jobs)", code=ExitCode.USAGE)
    return path


def _velora(job: str | None, to: Path | None, benchmark: str | None, name_by: str, dry_run: bool,
            json_out: bool) -> None:
    if to is None:
        fail("the VeloraHarness export needs --to DIR", code=ExitCode.USAGE)
    if name_by not in ("variant", "model"):
        fail("--name-by must be 'variant' or 'model'", code=ExitCode.USAGE)
    from trialbook.exports.velora import export_job

    result = export_job(resolve_job_dir(job), to, benchmark=benchmark, name_by=name_by,  # type: ignore[arg-type]
                        dry_run=dry_run)
    if json_out:
        print_json({**result.to_dict(), "dry_run": dry_run})
        return
    rows = [(w["trial"], w["outcome"], w["target"]) for w in result.written]
    title = f"{'Would export' if dry_run else 'Exported'} job {result.job}: {len(rows)} trial(s), " \
            f"benchmark {result.benchmark}"
    report = table(title, ["trial", "outcome", "Run dir"], rows)
    report.columns[-1].overflow = "fold"
    console.print(report)
    for skipped in result.skipped:
        console.print(f"[yellow]skipped[/] {esc(skipped['trial'])}: {esc(skipped['reason'])}", highlight=False)


def _parquet(targets: list[Path], out: Path | None, block_dir: Path | None, force: bool, json_out: bool) -> None:
    from trialbook.app.export_step import export_parquet_targets
    from trialbook.cli.indexing import warn

    def progress(name: str, n: int) -> None:
        if not json_out:
            console.print(f"  {esc(name)}: {n} trial(s)", highlight=False, style="dim")

    result = export_parquet_targets(targets, out, block_dir, force=force, on_job=progress)
    for w in result.warnings:
        warn(w)
    if json_out:
        print_json(result.to_dict())
        return
    console.print(table(f"Parquet export: {len(result.jobs)} job(s) in {result.seconds:.1f} s",
                        ["table", "rows", "files"],
                        [(name, n, f"{result.out_dir}/{name}/job=*/part-0.parquet") for name, n in result.rows.items()]))


def _sft(fmt: str, targets: list[Path], out: Path | None, block_dir: Path | None, force: bool,
         push_to_hub: str | None, json_out: bool) -> None:
    from trialbook.app.export_step import export_sft_targets

    result = export_sft_targets(fmt, targets, out, block_dir, force=force, push_to_hub=push_to_hub)
    if json_out:
        print_json(result.to_dict())
        return
    console.print(f"{result.rows} example(s) as a {'TRL chat-format' if fmt == 'trl' else 'Hugging Face'} dataset "
                  f"in {esc(result.out_dir)} (datasets.load_from_disk)"
                  + (f"; pushed to {esc(result.pushed_to)}" if result.pushed_to else ""), highlight=False)


def register(app: typer.Typer) -> None:
    """Add the ``export`` command to ``app``."""

    @app.command("export")
    def export_cmd(
        targets: list[str] = typer.Argument(None, metavar="[TARGET]...",
                                            help="parquet: results trees or jobs (any layout; default: the block's); "
                                                 "hf/trl: SFT data dirs (im.jsonl) or jobs to convert; velora: one native job"),
        fmt: str = typer.Option(None, "--format", help="parquet, hf (Hugging Face datasets), trl (TRL chat format), velora"),
        out: Path = typer.Option(None, "--out", "-o", help="Output directory (default: <block>/results/<format>)"),
        force: bool = typer.Option(False, "--force", help="Replace an earlier export at --out"),
        push_to_hub: str = typer.Option(None, "--push-to-hub", metavar="REPO",
                                        help="hf/trl: also push the dataset to this Hub repo (needs HF_TOKEN)"),
        to: Path = typer.Option(None, "--to", help="velora: destination; Trajectory_results/ is created inside"),
        layout: str = typer.Option(None, "--layout", help="Target layout (velora); same as --format velora"),
        benchmark: str = typer.Option(None, "--benchmark",
                                      help="velora: benchmark dir name (default: detected from the job's dataset name)"),
        name_by: str = typer.Option("model", "--name-by",
                                    help="velora: model-level dir: the VeloraHarness 'model' key (Gemini/Claude/GPT, "
                                         "other models their own name), or the 'variant' name"),
        dry_run: bool = typer.Option(False, "--dry-run", help="velora: list what would be written; write nothing"),
        block_dir: Path = typer.Option(None, "--block", "-b", help="Block directory (default: here)"),
        json_out: bool = typer.Option(False, "--json", help="Print the result as JSON"),
    ) -> None:
        """Export results: Parquet tables (trials, steps, tool_calls, llm_calls), SFT data as a Hugging Face
        or TRL dataset, or a native job as a VeloraHarness tree. Never overwrites without --force."""
        if layout is not None and layout not in LAYOUTS:
            fail(f"unknown export layout {layout!r}; known: {', '.join(LAYOUTS)}", code=ExitCode.USAGE)
        chosen = fmt or layout or ("velora" if to is not None else None)
        if chosen not in FORMATS:
            fail(f"give --format ({', '.join(FORMATS)})" if chosen is None
                 else f"unknown export format {chosen!r}; known: {', '.join(FORMATS)}", code=ExitCode.USAGE)
        if layout is not None and fmt not in (None, "velora"):
            fail("--layout velora and --format parquet/hf/trl are different exports: give one", code=ExitCode.USAGE)
        if chosen == "velora":
            if len(targets or ()) > 1:
                fail("the VeloraHarness export takes one job", code=ExitCode.USAGE)
            _velora((targets or [None])[0], to, benchmark, name_by, dry_run, json_out)
            return
        paths = [Path(t) for t in targets or ()]
        if chosen == "parquet":
            if push_to_hub:
                fail("--push-to-hub is for --format hf or trl", code=ExitCode.USAGE)
            _parquet(paths, out, block_dir, force, json_out)
        else:
            _sft(chosen, paths, out, block_dir, force, push_to_hub, json_out)
