"""Entry point of the ``trialbook`` CLI.

Each command lives in its own module under ``trialbook.cli`` and exposes
``register(app: typer.Typer) -> None``; ``COMMANDS`` maps the command name a user types to
that module. The console script imports only the module of the command being run (so
``trialbook show`` starts fast); ``--help`` and the importable ``app`` load them all.
Errors of type :class:`TrialbookError` become one-line messages (JSON on stderr under
``--json``) with the exit code of their kind (:class:`trialbook.errors.ExitCode`).
"""

from __future__ import annotations

import importlib
import sys

import typer
import typer.core

from trialbook.errors import TrialbookError

#: Command name -> module under trialbook.cli, in the order ``--help`` lists them.
COMMANDS: dict[str, str] = {
    "init": "init",
    "check": "check",
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
    "dashboard": "dashboard",
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
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    @new.callback()
    def _group(
        version: bool = typer.Option(
            False, "--version", is_eager=True, callback=_print_version,
            help="Print trialbook's version and exit.",
        ),
    ) -> None:
        """Run agents on tasks, record every trial, and turn the tree into scores and data."""

    _hide_flag_types()
    _no_adapter_for_none()
    for name in modules or COMMAND_MODULES:
        importlib.import_module(f"trialbook.cli.{name}").register(new)
    _add_examples(new)
    return new


def _add_examples(app: typer.Typer) -> None:
    """Every command's ``--help`` ends with its Examples section (see :mod:`.examples`)."""
    from trialbook.cli.examples import epilog

    for info in app.registered_commands:
        name = info.name or (info.callback.__name__.replace("_", "-") if info.callback else None)
        if name and info.epilog is None:
            info.epilog = epilog(name)
    for group in app.registered_groups:  # a group's help comes from its own Typer's info
        if group.name and group.typer_instance is not None:
            group.typer_instance.info.epilog = epilog(group.name)


def _hide_flag_types() -> None:
    """Boolean flags take no value, so their help shows no ``<bool>`` (newer typer adds one).

    ``TyperOption.display_type_rich`` is typer's public hook for that column; checked by a test.
    """
    option_class = typer.core.TyperOption
    shown = getattr(option_class, "display_type_rich", None)
    if shown is None or getattr(shown, "_trialbook", False):
        return

    def display_type_rich(self: typer.core.TyperOption, ctx: object) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    display_type_rich._trialbook = True  # type: ignore[attr-defined]
    option_class.display_type_rich = display_type_rich  # type: ignore[method-assign]


def _no_adapter_for_none() -> None:
    """An option left unset (None), or a plain ``str`` one given a string, is passed on without
    building typer's pydantic adapter.

    typer (>= 0.26) coerces every parameter value through a pydantic ``TypeAdapter`` built on
    first use, which imports pydantic: about half the start-up of ``trialbook show --last``,
    whose options are all unset. Its coercion of None is None (``RuntimeParam.coerce``) and of a
    string for a ``str`` parameter without a parser is that string, so skipping the adapter
    there changes nothing else; the required-value check and the callback still run. Patched
    on ``typer.core._TyperParameter.process_value``, when present (else typer's own path
    runs); checked by a test.
    """
    parameter_class = getattr(typer.core, "_TyperParameter", None)
    original = getattr(parameter_class, "process_value", None)
    if original is None or getattr(original, "_trialbook", False):
        return

    def process_value(self: typer.core._TyperParameter, ctx: typer.core._click.Context, value: object) -> object:
        if self.multiple or self.nargs == -1 or not (value is None or (type(value) is str and _plain_str(self))):
            return original(self, ctx, value)
        if self.required and self.value_is_missing(value):
            raise typer.core._click.exceptions.MissingParameter(ctx=ctx, param=self)
        return self.callback(ctx, self, value) if self.callback is not None else value

    process_value._trialbook = True  # type: ignore[attr-defined]
    parameter_class.process_value = process_value  # type: ignore[union-attr]


def _plain_str(param: typer.core._TyperParameter) -> bool:
    """The parameter is annotated ``str``, with no custom parser (its coercion of a string is that string)."""
    descriptor = getattr(param, "type_descriptor", None)
    info = getattr(descriptor, "parameter_info", None)
    return getattr(descriptor, "annotation", None) is str and getattr(info, "parser", 0) is None


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
    from trialbook.secrets import ScrubbingStream

    # what the commands print is scrubbed of the run's secrets, like every file they write
    sys.stdout = ScrubbingStream(sys.stdout)  # type: ignore[assignment]
    sys.stderr = ScrubbingStream(sys.stderr)  # type: ignore[assignment]
    from trialbook.cli import output

    output.json_errors = "--json" in sys.argv[1:]
    try:
        build_app(_modules_for(sys.argv[1:]))()
    except TrialbookError as exc:
        output.print_error(str(exc), exc.exit_code)
        sys.exit(int(exc.exit_code))


if __name__ == "__main__":
    main()
