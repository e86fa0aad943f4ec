"""Entry point of the ``trialbook`` CLI.

Each command lives in its own module under ``trialbook.cli`` and exposes
``register(app: typer.Typer) -> None``; ``COMMANDS`` maps the command name a user types to
that module. The console script imports only the module of the command being run (so
``trialbook show`` starts fast); ``trialbook --help`` lists every command from
:data:`COMMAND_HELP` without importing any (a test checks the listing is the one the full app
prints); the importable ``app`` loads them all.
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
    "push": "push",
    "clean": "clean",
    "migrate": "migrate",
    "export": "export",
    "validate": "validate",
    "schema": "schema",
}

#: Each command's one-line help as ``trialbook --help`` lists it (the first paragraph of its own
#: help), so that listing imports no command module; a test checks these against the commands.
COMMAND_HELP: dict[str, str] = {
    "init": "Create a block: a commented config.yaml, scripts/, and a .gitignore of runtime outputs.",
    "check": "Check task directories for every problem at once, before a run finds them one per run.",
    "demo": "Create a demo block (5 example tasks; oracle and nop x 3 attempts, or with --swe the SWE example) "
            "and run it.",
    "run": "Run tasks x variants x attempts in the sandbox; resume a job by naming it with --job.",
    "status": "Show the block's live status: current job, progress and outcome counts (config.yaml's status "
              "section is its snapshot at job start and end).",
    "monitor": "Progress, throughput, ETA, errors by type, stalled, running and slowest trials, on one screen.",
    "show": "A job's summary: per variant and task, success, pass@k, errors, tokens, cost, AIU, turns.",
    "list": "Jobs of every indexed root: layout, status, times, counted trials, success rate, errors.",
    "reindex": "Build results/index.db from job directories: only changed trials are read again.",
    "sql": "Run a read-only SQL query on the index; --tables lists what there is to query.",
    "analyze": "Explain one trial: outcome, reward, turns, tool calls by tool, tokens, cost, AIU, errors, timeline.",
    "analyze-job": "Classify failures, tier tasks, compare resolved and unresolved trials; deterministic, no LLM.",
    "convert": "Convert trajectories to SFT data; options default to the block's sft_conversion settings.",
    "dashboard": "Build the dashboard: jobs, job, trial, compare, SFT and archive pages, openable from disk.",
    "archive": "Archive a job now: trialbook archive [JOB] (default: the last job). Show one archive: trialbook "
               "archive show N. Rebuild a block from one: trialbook archive restore N DIR.",
    "archives": "List archived runs (index.yaml is the history; orphan or missing archives are flagged).",
    "push": "Upload a job's finished trials, files, SFT data and the archives to artifacts.store (resumable).",
    "clean": "Remove jobs, logs, litellm, sft_data, dashboard site and cache (--repos: repos/ too).",
    "migrate": "Copy old OpenHands run folders into Trajectory_results/{Benchmark}/{Instance}/{Model}/Run{K}/.",
    "export": "Export results: Parquet tables (trials, steps, tool_calls, llm_calls), SFT data as a Hugging Face\n"
              "or TRL dataset, or a native job as a VeloraHarness tree. Never overwrites without --force.",
    "validate": "Validate an ATIF trajectory (v1.0-v1.8) and print every violation with its JSON path.",
    "schema": "Print the JSON Schema registered as NAME, or list the names when NAME is omitted.",
}
#: Commands that are sub-apps (typer lists them after the plain commands).
COMMAND_GROUPS = frozenset({"archive"})

#: Every command module (kept for code that lists them).
COMMAND_MODULES: list[str] = list(dict.fromkeys(COMMANDS.values()))


def _new_app() -> typer.Typer:
    """The top-level app with its options and no command yet."""
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
    return new


def build_app(modules: list[str] | None = None) -> typer.Typer:
    """A typer app with the given command modules registered (default: all)."""
    new = _new_app()
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


def listing_app() -> typer.Typer:
    """An app whose commands only carry their one-line help: ``trialbook --help`` without
    importing any command module. Running one of its commands is a bug (main never does)."""
    new = _new_app()

    def listed_only() -> None:
        raise RuntimeError("a command of the --help listing was run")

    names = [n for n in COMMANDS if n not in COMMAND_GROUPS] + [n for n in COMMANDS if n in COMMAND_GROUPS]
    for name in names:
        new.command(name, help=COMMAND_HELP.get(name, ""))(listed_only)
    return new


def _no_command(argv: list[str]) -> bool:
    """``argv`` names no command: ``trialbook``, ``trialbook --help``, ``trialbook --version``."""
    return all(a.startswith("-") for a in argv)


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
        argv = sys.argv[1:]
        (listing_app() if _no_command(argv) else build_app(_modules_for(argv)))()
    except TrialbookError as exc:
        output.print_error(str(exc), exc.exit_code)
        sys.exit(int(exc.exit_code))


if __name__ == "__main__":
    main()
