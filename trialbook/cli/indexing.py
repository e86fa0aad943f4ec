"""Shared plumbing of the index commands (show, reindex, sql, list, analyze): where, and warnings.

Not a command module (it registers nothing): it resolves ``--block``/``--db`` and turns
Python warnings raised by the library (an index rebuilt, a root gone) into ``warning:`` lines
on stderr.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path

from trialbook.cli.output import err_console, esc
from trialbook.index.locate import block_roots, checkout_roots, find_block_or_none, index_path
from trialbook.index.reindex import RootSpec
from trialbook.layout.paths import BlockPaths


def where(block_dir: Path | None, db: Path | None) -> tuple[BlockPaths | None, Path, list[RootSpec]]:
    """(block or None, index path, roots) for ``--block`` / ``--db``: the block's roots, or outside a
    block those of a copilot-experiments checkout here (``jobs/``, ``results/``; see ``checkout_roots``)."""
    block = find_block_or_none(block_dir)
    return block, index_path(block, db), block_roots(block) if block is not None else checkout_roots()


def warn(message: str) -> None:
    """One ``warning:`` line on stderr."""
    err_console.print(f"[yellow]warning:[/] {esc(message)}", highlight=False, soft_wrap=True)


@contextlib.contextmanager
def reported_warnings() -> Iterator[list[str]]:
    """Collect Python warnings raised inside the block and print each as a ``warning:`` line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        messages: list[str] = []
        try:
            yield messages
        finally:
            for w in caught:
                messages.append(str(w.message))
            for m in dict.fromkeys(messages):
                warn(m)
