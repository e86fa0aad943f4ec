"""``trialbook validate FILE``: check an ATIF trajectory and list every violation with its JSON path.

Exit codes: 0 valid, 1 violations found, 2 file unreadable or not JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trialbook.cli.output import console, esc, fail, print_json, table
from trialbook.errors import SourceError
from trialbook.model.atif_validate import validate_file


def register(app: typer.Typer) -> None:
    """Add the ``validate`` command to ``app``."""
    app.command("validate")(validate)


def validate(
    file: Annotated[Path, typer.Argument(help="ATIF trajectory file (agent/trajectory.json).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the violations as a JSON list.")] = False,
) -> None:
    """Validate an ATIF trajectory (v1.0-v1.8) and print every violation with its JSON path."""
    try:
        violations = validate_file(file)
    except SourceError as exc:
        fail(str(exc), code=exc.exit_code)
    if as_json:
        print_json([v.to_dict() for v in violations])
    elif violations:
        rows = [(v.path, v.rule, v.message) for v in violations]
        report = table(f"{file}: {len(violations)} violation(s)", ["path", "rule", "message"], rows)
        report.columns[0].overflow = "fold"  # long JSON paths wrap instead of being cut
        console.print(report)
    else:
        console.print(f"[green]{esc(file)}: valid ATIF[/]", highlight=False)
    if violations:
        raise typer.Exit(1)
