"""``trialbook convert [JOB]``: a job of any layout to im.jsonl, lf.json, lf.stats.json."""

from __future__ import annotations

from pathlib import Path

import typer

from trialbook.cli.output import console, print_json, table
from trialbook.config import SftConversionConfig, load_config
from trialbook.errors import TrialbookError
from trialbook.index.locate import find_job
from trialbook.sft.job import convert_job, options_from_config


def _block_sft_config(block_dir: Path | None) -> tuple[SftConversionConfig, Path | None]:
    """The current block's sft_conversion settings and directory (defaults and None outside a block)."""
    from trialbook.block.init import find_block

    try:
        block = find_block(block_dir)
        return load_config(block.config).sft_conversion, block.root
    except TrialbookError:
        return SftConversionConfig(), None


def _token_cache(root: Path | None) -> Path | None:
    """The block's token-count cache (none outside a block)."""
    from trialbook.layout.paths import BlockPaths

    return BlockPaths(root).token_cache if root is not None else None


def register(app: typer.Typer) -> None:
    @app.command("convert")
    def convert_cmd(
        job: str = typer.Argument(None, help="Job path (any layout) or job name; default: the last job"),
        min_reward: float = typer.Option(None, "--min-reward", help="Keep trials with reward >= R"),
        resolved_only: bool = typer.Option(None, "--resolved-only/--all", help="Keep resolved trials only"),
        max_tokens: int = typer.Option(None, "--max-tokens", help="Drop examples longer than N tokens"),
        per_task_cap: int = typer.Option(None, "--per-task-cap", help="Keep at most M examples per task"),
        thinking: str = typer.Option(None, "--thinking", help="keep | strip reasoning_content"),
        tokenizer: str = typer.Option(None, "--tokenizer", help="Token counter: o200k_base (default), cl100k_base, hf:PATH / hf:NAME (a Hugging Face tokenizer.json, path or local-cache model name), or none (no token figures)"),
        workers: int = typer.Option(None, "--workers", "-j", min=1, help="Converting processes (default: one per CPU; same output for any number)"),
        out: Path = typer.Option(None, "--out", help="Output directory (default: the block's sft_data_dir/<job>)"),
        layout: str = typer.Option(None, "--layout", help="Force a layout instead of detecting it"),
        block_dir: Path = typer.Option(None, "--block", "-b", help="Block directory (default: here)"),
        force: bool = typer.Option(False, "--force", help="Replace an earlier conversion in the output directory"),
        json_out: bool = typer.Option(False, "--json", help="Print the result as JSON"),
    ) -> None:
        """Convert trajectories to SFT data; options default to the block's sft_conversion settings.

        An earlier conversion is never replaced silently: --force replaces it, --out writes elsewhere.
        """
        path = find_job(job, block_dir)
        sft_config, root = _block_sft_config(block_dir)
        options = options_from_config(sft_config, root, min_reward=min_reward,
                                      resolved_only=resolved_only, max_tokens=max_tokens,
                                      per_task_cap=per_task_cap, thinking=thinking, tokenizer=tokenizer)
        results = convert_job(path, layout=layout, out=out, options=options, overwrite=force, workers=workers,
                              token_cache=_token_cache(root))
        if json_out:
            print_json([{"out_dir": str(r.out_dir), "trajectories_in": r.trajectories_in, "kept": r.kept,
                         "dropped": r.dropped, "tokenizer": r.stats["tokens"]["tokenizer"]} for r in results])
            return
        for r in results:
            dropped = ", ".join(f"{k}={v}" for k, v in r.dropped.items() if v) or "none"
            console.print(table(f"SFT data in {r.out_dir}", ["trajectories in", "kept", "dropped"],
                                [(r.trajectories_in, r.kept, dropped)]))
