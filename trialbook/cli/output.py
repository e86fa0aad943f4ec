"""Shared printing for CLI commands: JSON for machines, rich tables for people, one-line errors.

rich is imported on first use (``console``, ``err_console``, ``esc``, ``table``): a command that
only prints JSON never pays for it, which keeps ``show --last --json`` a fast process.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from trialbook.errors import ExitCode
from trialbook.jsonio import dumps

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

#: Set by the entry point when ``--json`` is on the command line: errors are then JSON too.
json_errors = False


def esc(value: object) -> str:
    """``value`` as text rich prints literally: names, reasons and paths come from files anyone wrote,
    and a ``[/x]`` in them must neither vanish as markup nor crash the command (MarkupError)."""
    from rich.markup import escape

    return escape(str(value))


def print_json(obj: Any) -> None:
    """Print ``obj`` as indented JSON on stdout (what every ``--json`` flag prints)."""
    sys.stdout.write(dumps(obj).decode("utf-8") + "\n")
    sys.stdout.flush()


def print_error(message: str, code: int) -> None:
    """One error on stderr: a red line for people, ``{"error", "exit_code"}`` JSON under --json."""
    if json_errors:
        sys.stderr.write(dumps({"error": message, "exit_code": int(code)}).decode("utf-8") + "\n")
        sys.stderr.flush()
    else:
        __getattr__("err_console").print(f"[bold red]error:[/] {esc(message)}", highlight=False, soft_wrap=True)


def fail(message: str, code: int = ExitCode.FAILED) -> NoReturn:
    """Print a one-line error on stderr and exit with ``code`` (see :class:`ExitCode`)."""
    print_error(message, code)
    raise typer.Exit(int(code))


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    """A rich table with ``columns`` and ``rows`` (None shown as an em dash); cells are plain text."""
    from rich.table import Table
    from rich.text import Text

    t = Table(title=esc(title) if title is not None else None, title_justify="left")
    for col in columns:
        t.add_column(esc(col))
    for row in rows:
        t.add_row(*(Text("—" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))) for v in row))
    return t


def __getattr__(name: str) -> Console:
    """``console`` (stdout) and ``err_console`` (stderr), made on first use (see the module docstring)."""
    if name in ("console", "err_console"):
        if name in globals():  # made already (this function is also called from inside the module)
            return globals()[name]
        from rich.console import Console

        made = globals()[name] = Console(stderr=name == "err_console")
        return made
    raise AttributeError(name)
