"""``trialbook schema NAME``: print the JSON Schema of a format trialbook reads or writes (e.g. ``atif``)."""

from __future__ import annotations

from typing import Annotated

import typer

from trialbook import config as _config  # noqa: F401  registers the "config" schema
from trialbook.cli.output import console, fail, print_json
from trialbook.errors import TrialbookError
from trialbook.model.schemas import json_schema, schema_names


def register(app: typer.Typer) -> None:
    """Add the ``schema`` command to ``app``."""
    app.command("schema")(schema)


def schema(
    name: Annotated[
        str | None, typer.Argument(help="Schema name; omit to list the known names.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Machine output (the schema is JSON already).")
    ] = False,
) -> None:
    """Print the JSON Schema registered as NAME, or list the names when NAME is omitted."""
    if name is None:
        if as_json:
            print_json(schema_names())
        else:
            for known in schema_names():
                console.print(known, highlight=False)
        return
    try:
        document = json_schema(name)
    except TrialbookError as exc:
        fail(str(exc), code=exc.exit_code)
    print_json(document)
