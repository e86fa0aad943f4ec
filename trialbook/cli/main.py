"""Entry point of the ``trialbook`` CLI.

Each command lives in its own module under ``trialbook.cli`` and exposes
``register(app: typer.Typer) -> None``; ``COMMANDS`` maps the command name a user types to
that module. The console script imports only the module of the command being run (so
``trialbook show`` starts fast); ``--help`` and the importable ``app`` load them all.
Errors of type :class:`TrialbookError` become one-line messages, exit code 2.
"""

from __future__ import annotations

import importlib
import sys

import typer

from trialbook.errors import TrialbookError

#: Command name -> module under trialbook.cli, in the order ``--help`` lists them.
COMMANDS: dict[str, str] = {
    "init": "init",
    "demo": "demo",
    "run": "run",
    "status": "status",
    "monitor": "monitor",
    "show": "show",
    "list": "list_jobs",
    "reindex": "reindex",
    "sql": "sql",
    "analyze": "analyze",
    "analyze-job": "analyze_job",
    "convert": "convert",
    "archive": "archive",
    "archives": "archives",
    "clean": "clean",
    "migrate": "migrate",
    "export": "export",
    "validate": "validate",
    "schema": "schema",
}

#: Every command module (kept for code that lists them).
COMMAND_MODULES: list[str] = list(dict.fromkeys(COMMANDS.values()))


def build_app(modules: list[str] | None = None) -> typer.Typer:
    """A typer app with the given command modules registered (default: all)."""
    new = typer.Typer(
        name="trialbook",
        help="Run agents on tasks, record every trial, and turn the tree into scores and data.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )

    @new.callback()
    def _group(
        version: bool = typer.Option(
            False, "--version", is_eager=True, callback=_print_version,
            help="Print trialbook's version and exit.",
        ),
    ) -> None:
        """Run agents on tasks, record every trial, and turn the tree into scores and data."""

    for name in modules or COMMAND_MODULES:
        importlib.import_module(f"trialbook.cli.{name}").register(new)
    return new


def _print_version(value: bool) -> None:
    """``trialbook --version``: the package version (one source: ``trialbook.__version__``)."""
    if value:
        from trialbook import __version__

        typer.echo(f"trialbook {__version__}")
        raise typer.Exit()


def __getattr__(name: str) -> typer.Typer:
    """``from trialbook.cli.main import app``: the app with every command (built on first use)."""
    if name == "app":
        globals()["app"] = built = build_app()
        return built
    raise AttributeError(name)


def _modules_for(argv: list[str]) -> list[str] | None:
    """Only the module of the command in ``argv`` (None = all, e.g. for --help or a typo)."""
    command = next((a for a in argv if not a.startswith("-")), None)
    if command in COMMANDS and "--help" not in argv and "-h" not in argv:
        return [COMMANDS[command]]
    return None


def main() -> None:
    """Console-script entry: run the app, turning our own errors into one clean line."""
    from trialbook.cli.output import err_console

    try:
        build_app(_modules_for(sys.argv[1:]))()
    except TrialbookError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
