"""``trialbook export --format parquet|hf|trl``: what to export, where to, and with which settings.

* parquet: the results trees named (roots or jobs of any layout), else the block's roots
  (its jobs directory and ``index.roots``; outside a block, a copilot-experiments checkout's).
* hf / trl: SFT data. A target holding ``im.jsonl`` (a conversion's output directory) is used
  as it is (curated data stays curated); any other target is a results tree, converted first
  with the block's ``sft_conversion`` settings. No target: every ``im.jsonl`` under the block's
  SFT data directory (``runtime_info.output.sft_data_dir``, default ``artifacts/sft_data``).

Default output: ``<block>/results/<format>/`` in a block, else ``./trialbook-<format>/``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trialbook.config import load_config
from trialbook.errors import ConfigError, TrialbookError
from trialbook.index.locate import find_block_or_none, lookup_context
from trialbook.jsonio import iter_jsonl
from trialbook.layout.paths import BlockPaths
from trialbook.sft.job import convert_job, options_from_config
from trialbook.sft.trl import hf_row, trl_row

FORMATS = ("parquet", "hf", "trl")
IM_FILE = "im.jsonl"


def default_out(fmt: str, block: BlockPaths | None) -> Path:
    """``<block>/results/<fmt>`` inside a block, else ``./trialbook-<fmt>``."""
    return block.export_dir(fmt) if block is not None else Path(os.getcwd()) / f"trialbook-{fmt}"


def export_parquet_targets(targets: Sequence[Path], out: Path | None, block_dir: Path | None, *,
                           force: bool = False, on_job: Any = None) -> Any:
    """Parquet tables of ``targets`` (else the block's roots) in ``out`` (else the default)."""
    from trialbook.exports.parquet import export_parquet

    block, _, roots = lookup_context(block_dir, None)
    if targets:
        sources: list[tuple[Path, str | None]] = []
        for t in targets:
            if not t.exists():
                raise TrialbookError("path not found", t, not_found=True)
            sources.append((t, None))
    else:
        sources = [(r.path, r.layout) for r in roots if r.path.exists()]
        if not sources:
            raise TrialbookError("nothing to export here: name results trees (ROOT...), or run in a block",
                                 not_found=True)
    return export_parquet(sources, out or default_out("parquet", block), force=force, on_job=on_job)


@dataclass(frozen=True)
class ImRows:
    """The rows of some im.jsonl files in one shape, re-readable (a source for two passes); picklable."""

    paths: tuple[str, ...]
    shape: str  # "hf" | "trl"

    def __call__(self) -> Iterator[dict[str, Any]]:
        mapper = hf_row if self.shape == "hf" else trl_row
        for path in self.paths:
            for record in iter_jsonl(path):
                if not isinstance(record, dict) or not isinstance(record.get("messages"), list):
                    raise TrialbookError("not an im.jsonl record (no messages list)", path)
                yield mapper(record)


def _sft_options(block: BlockPaths | None) -> Any:
    if block is None:
        return None
    try:
        return options_from_config(load_config(block.config).sft_conversion, block.root)
    except ConfigError:
        return None


def sft_files(targets: Sequence[Path], block: BlockPaths | None, scratch: Path) -> list[Path]:
    """The im.jsonl files to export: given, converted from results trees into ``scratch``, or the block's."""
    if not targets:
        if block is None:
            raise TrialbookError("no SFT data named: give im.jsonl directories or jobs, or run in a block",
                                 not_found=True)
        try:
            rel = load_config(block.config).runtime_info.output.sft_data_dir
        except ConfigError:
            rel = None
        sft_data = block.root / rel if rel else block.sft_data
        found = sorted(sft_data.glob(f"*/{IM_FILE}"))
        if not found:
            raise TrialbookError(f"no SFT data in {sft_data} (run `trialbook convert` first, or name jobs)",
                                 not_found=True)
        return found
    files: list[Path] = []
    for i, target in enumerate(targets):
        if not target.exists():
            raise TrialbookError("path not found", target, not_found=True)
        if target.is_file() and target.name.endswith(".jsonl"):
            files.append(target)
        elif (target / IM_FILE).is_file():
            files.append(target / IM_FILE)
        else:
            results = convert_job(target, out=scratch / str(i), options=_sft_options(block), overwrite=True)
            files += [r.im_path for r in results]
    return files


def export_sft_targets(fmt: str, targets: Sequence[Path], out: Path | None, block_dir: Path | None, *,
                       force: bool = False, push_to_hub: str | None = None) -> Any:
    """SFT data of ``targets`` as a ``datasets`` dataset in the ``hf`` or ``trl`` shape (see the module docstring)."""
    from trialbook.exports.hf import hf_features, save_dataset

    block = find_block_or_none(block_dir)
    target_dir = out or default_out(fmt, block)
    with tempfile.TemporaryDirectory(prefix="trialbook-sft-") as scratch:
        rows = ImRows(tuple(str(p) for p in sft_files(targets, block, Path(scratch))), fmt)
        return save_dataset(rows, target_dir, fmt, features=hf_features() if fmt == "hf" else None,
                            force=force, push_to_hub=push_to_hub)
