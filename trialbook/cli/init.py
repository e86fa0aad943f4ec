"""``trialbook init DIR --kind eval|trajgen``: create a block workspace."""

from __future__ import annotations

from pathlib import Path

import typer

from trialbook.block.init import init_block, seed_example_task
from trialbook.cli.output import console, print_json


def register(app: typer.Typer) -> None:
    @app.command("init")
    def init_cmd(
        directory: Path = typer.Argument(..., help="Directory of the new block"),
        kind: str = typer.Option("eval", "--kind", help="eval (grades, analyses) or trajgen (SFT data)"),
        tasks: str = typer.Option("tasks", "--tasks", help="Tasks dataset dir written into config.yaml"),
        json_out: bool = typer.Option(False, "--json", help="Print the result as JSON"),
    ) -> None:
        """Create a block: a commented config.yaml, scripts/, and a .gitignore of runtime outputs."""
        block = init_block(directory, kind, tasks_path=tasks)
        seed_example_task(block, tasks)
        files = sorted(str(p.relative_to(block.root)) for p in block.root.rglob("*") if p.is_file()
                       and ".trialbook" not in p.parts)
        if json_out:
            print_json({"block": str(block.root), "kind": kind, "files": files})
            return
        console.print(f"Created {kind} block at [bold]{block.root}[/]")
        for f in files:
            console.print(f"  {f}")
        console.print("Next: write tasks next to the example (docs/tasks.md), edit config.yaml, then run "
                      "[bold]trialbook check[/] and [bold]trialbook run[/] in that directory.")
