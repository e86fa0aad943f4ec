"""``trialbook demo [DIR]``: a real job on the bundled example tasks, no API key needed."""

from __future__ import annotations

import re
import shutil
from importlib import resources
from pathlib import Path

import typer

from trialbook.app.pipeline import run_block
from trialbook.app.swe_demo import create_swe_demo_block
from trialbook.block.init import init_block
from trialbook.cli.output import console, print_json
from trialbook.cli.run import print_results
from trialbook.dashboard import build_site, resolve_site
from trialbook.errors import ConfigError
from trialbook.model.trial import TrialRecord

#: What replaces the demo config's ``type: local`` line for each other ``--environment``.
_ENGINE_LINE = ("  type: {engine}{pad}# a container per trial, of the image built from each task's Dockerfile\n"
                "  engine_flags: []         # e.g. ['--runtime', 'runc'] (docs/environments.md, Setting up Podman)\n"
                "  run_flags: []            # e.g. ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024']\n")
DEMO_ENVIRONMENTS = ("local", "podman", "docker")


def create_demo_block(directory: Path, environment: str = "local") -> Path:
    """A new eval block at ``directory`` with the example tasks and the demo config, its
    ``environment.type`` set to ``environment`` (``local``, ``podman`` or ``docker``)."""
    examples = resources.files("trialbook.examples")
    if (directory / "config.yaml").exists():
        raise ConfigError("a block already exists here; choose an empty directory for the demo",
                          directory / "config.yaml")
    if environment not in DEMO_ENVIRONMENTS:
        raise ConfigError(f"demo --environment {environment!r}: use one of {', '.join(DEMO_ENVIRONMENTS)}")
    config_text = examples.joinpath("demo", "config.yaml").read_text()
    if environment != "local":
        line = _ENGINE_LINE.format(engine=environment, pad=" " * (19 - len(environment)))
        config_text, n = re.subn(r"(?m)^  type: local\b.*\n", lambda _: line, config_text, count=1)
        if n != 1:
            raise RuntimeError("the bundled demo config has no `  type: local` line to replace")
    block = init_block(directory, "eval", config_text=config_text)
    with resources.as_file(examples.joinpath("tasks")) as tasks_src:
        shutil.copytree(tasks_src, block.root / "tasks", dirs_exist_ok=False)
    return block.root


#: What the demo gets wrong on purpose, so a reader of its numbers knows they are intended:
#: (task or variant, what it shows, the outcome every one of its trials should have).
DELIBERATE: list[tuple[str, str, str]] = [
    ("task broken-verifier", "its test writes no reward file, on purpose: shows how verifier "
     "errors are counted (as errors, never as a silent 0)", "verifier_error"),
    ("variant nop", "an agent that does nothing: the floor every task must stay above", "unresolved"),
]
#: The SWE demo's instances that show SWE-bench grading rather than a fix (the oracle applies gold patches).
DELIBERATE_SWE: list[tuple[str, str, str]] = [
    ("task calc__mean-2", "its gold patch fixes the bug but breaks a passing test, on purpose: resolution NO",
     "unresolved"),
    ("task calc__median-3", "its gold patch fixes one of two failing tests, on purpose: resolution PARTIAL",
     "unresolved"),
    ("task calc__version-4", "it has no gold patch, on purpose: graded as an empty patch", "unresolved"),
    ("variant nop", "an agent that does nothing: the floor every task must stay above", "unresolved"),
]


def deliberate_lines(records: list[TrialRecord], table: list[tuple[str, str, str]] | None = None) -> list[str]:
    """One line per deliberate failure, with how many trials it touched and whether all went as intended."""
    lines = []
    table = DELIBERATE if table is None else table
    explained = {s.split(" ", 1)[1] for s, _, _ in table if s.startswith("task ")}
    for subject, why, expected in table:
        kind, name = subject.split(" ", 1)
        mine = [r for r in records if (r.task if kind == "task" else r.variant) == name]
        if kind == "variant":  # the deliberately broken tasks are explained by their own lines
            mine = [r for r in mine if r.task not in explained]
        if not mine:
            continue
        hits = sum(1 for r in mine if str(r.outcome) == expected)
        verdict = "as intended" if hits == len(mine) else f"NOT as intended: {hits} of {len(mine)}"
        lines.append(f"  {subject}: {why}. {expected} in {hits} trials ({verdict})")
    return lines


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo_cmd(
        directory: Path = typer.Argument(Path("trialbook-demo"), help="Where to create the demo block"),
        json_out: bool = typer.Option(False, "--json", help="Print the outcome as JSON"),
        swe: bool = typer.Option(False, "--swe", help="The SWE-style demo: 4 instances of a small git "
                                 "repository, oracle and nop, graded into report.json"),
        environment: str = typer.Option("local", "--environment", "-e", help="Where trials run: local "
                                        "(bubblewrap), podman or docker (each task's Dockerfile built; "
                                        "see docs/environments.md)"),
    ) -> None:
        """Create a demo block (5 example tasks; oracle and nop x 3 attempts, or with --swe the SWE example) and run it."""
        if swe and environment != "local":
            raise ConfigError("demo --swe runs in the local environment only (SWE-style instances run in local)")
        root = create_swe_demo_block(directory) if swe else create_demo_block(directory, environment)
        if not json_out:
            console.print(f"Demo block created at [bold]{root}[/]; running the job...")
        report = run_block(root / "config.yaml", "demo")
        out = report.outcome
        outputs = sorted(p.name for p in out.job_dir.iterdir() if not p.name.startswith("."))
        site = build_site(resolve_site(root)).site
        dashboard = f"{site}/index.html"
        if json_out:
            print_json({"block": str(root), "job_dir": str(out.job_dir), "results": out.aggregate,
                        "outputs": outputs, "post_run": report.steps,
                        "post_run_errors": report.step_errors, "dashboard": dashboard})
            return
        print_results(out.aggregate, out.job_dir, out.records)
        console.print("Deliberate failures in this demo:")
        for line in deliberate_lines(out.records, DELIBERATE_SWE if swe else DELIBERATE):
            console.print(line, highlight=False, soft_wrap=True)
        n_trials = sum(1 for p in out.job_dir.iterdir() if (p / "trial.json").is_file())
        where = [
            ("job aggregate", out.job_dir / "results.json"),
            ("summary", out.job_dir / "summary.md"),
            ("job analysis", out.job_dir / "analysis"),
            *([("SWE report", out.job_dir / "report.json")] if (out.job_dir / "report.json").is_file() else []),
            (f"{n_trials} trial dirs", out.job_dir / "<trial>/{trial.json,agent/,evaluation/}"),
            ("run archive", Path(report.steps.get("archive", {}).get("archive", root / "artifacts" / "archives"))),
            ("run history", root / "artifacts" / "index.yaml"),
            ("SQLite index", root / "results" / "index.db"),
            ("monitor report", root / "logs" / "monitor.md"),
        ]
        console.print("Where the outputs are:")
        for label, path in where:
            console.print(f"  {label:<16} {path}", highlight=False, soft_wrap=True)
        console.print(f"Block status: trialbook status --block {root}")
        console.print(f"Dashboard: file://{dashboard} (live view: trialbook dashboard --serve --block {root})",
                      highlight=False, soft_wrap=True)
