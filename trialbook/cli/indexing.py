"""Shared plumbing of the index commands (show, reindex, sql, list, analyze): where, and warnings.

Not a command module (it registers nothing): it resolves ``--block``/``--db`` and turns
Python warnings raised by the library (an index rebuilt, a root gone) into ``warning:`` lines
on stderr.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

from trialbook.cli import output


def warn(message: str) -> None:
    """One ``warning:`` line on stderr."""
    output.err_console.print(f"[yellow]warning:[/] {output.esc(message)}", highlight=False, soft_wrap=True)


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
