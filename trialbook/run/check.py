"""``trialbook check``: every problem of a task dataset at once, before a run finds them one by one.

Static checks read the task directories (missing files, TOML, empty instruction, timeouts,
shell syntax of the scripts, executable bits Harbor expects). ``run_baselines`` then runs the
oracle and nop agents once per task in the real sandbox, in a scratch block, and reports the
tasks the oracle fails (broken tests or solution) or nop passes (solved by doing nothing).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from trialbook.errors import TaskError
from trialbook.model.baselines import BaselineFinding, baseline_findings
from trialbook.run.tasks import load_harbor_task, select_names

REQUIRED = ("task.toml", "instruction.md", "environment", "tests/test.sh")
SCRIPTS = ("tests/test.sh", "solution/solve.sh")


@dataclass
class TaskProblem:
    """One thing wrong with a task: ``error`` stops a run, ``warning`` is worth a look."""

    task: str
    path: Path
    severity: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "path": str(self.path), "severity": self.severity, "message": self.message}


def task_dirs(paths: list[Path], include: list[str] | None = None,
              exclude: list[str] | None = None) -> list[Path]:
    """Task directories named by ``paths``: a task itself (it has task.toml) or a dataset of them."""
    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            raise TaskError("not a task or dataset directory", path, not_found=not path.exists())
        if (path / "task.toml").exists() or (path / "instruction.md").exists():
            found.append(path)
            continue
        names = [p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")]
        found += [path / n for n in select_names(names, include or [], exclude or [])]
    return found


def check_task(task_dir: Path) -> list[TaskProblem]:
    """All static problems of one Harbor-format task directory."""
    name = task_dir.name
    out: list[TaskProblem] = []

    def add(severity: str, message: str) -> None:
        out.append(TaskProblem(name, task_dir, severity, message))

    missing = [rel for rel in REQUIRED if not (task_dir / rel).exists()]
    if missing:
        add("error", f"missing {', '.join(missing)}")
    if not (task_dir / "solution" / "solve.sh").is_file():
        add("warning", "no solution/solve.sh: the oracle agent cannot run this task")
    if (task_dir / "task.toml").is_file():
        try:
            tomllib.loads((task_dir / "task.toml").read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            add("error", f"task.toml is not valid TOML: {exc}")
    instruction = task_dir / "instruction.md"
    if instruction.is_file() and not instruction.read_text(encoding="utf-8", errors="replace").strip():
        add("error", "instruction.md is empty")
    for rel in SCRIPTS:
        script = task_dir / rel
        if not script.is_file():
            continue
        if not script.read_bytes().strip():
            add("error", f"{rel} is empty")
            continue
        syntax = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        if syntax.returncode != 0:
            first = (syntax.stderr.strip().splitlines() or ["syntax error"])[0]
            add("error", f"{rel} has a shell syntax error: {first.replace(str(script), rel)}")
        if not os.access(script, os.X_OK):
            add("warning", f"{rel} is not executable (trialbook runs it with bash; Harbor may run it directly)")
    if not missing and not any(p.severity == "error" for p in out):
        try:  # whatever else the loader refuses (unsafe names, bad timeouts)
            load_harbor_task(task_dir)
        except TaskError as exc:
            add("error", exc.message.removeprefix("broken task: "))
    return out


def check_tasks(dirs: list[Path]) -> list[TaskProblem]:
    """Static problems of every task directory, in order."""
    return [p for d in dirs for p in check_task(d)]


def run_baselines(dirs: list[Path], *, concurrency: int = 4, timeout_s: float = 600) -> list[BaselineFinding]:
    """Run oracle and nop once on each task in the sandbox; what they say about the tasks.

    Tasks with a static error are skipped (they cannot run). The scratch block is removed.
    """
    from trialbook.block.init import init_block
    from trialbook.run.scheduler import prepare_job, run_job

    with tempfile.TemporaryDirectory(prefix="trialbook-check-") as tmp:
        dataset = Path(tmp) / "tasks"
        dataset.mkdir()
        for d in dirs:
            (dataset / d.name).symlink_to(d.resolve(), target_is_directory=True)
        config = {
            "kind": "eval", "tasks": {"path": str(dataset)},
            "variants": [{"name": "oracle", "agent": "oracle"}, {"name": "nop", "agent": "nop"}],
            "attempts": 1, "concurrency": concurrency,
            "timeouts": {"environment_setup": timeout_s, "agent": timeout_s, "verifier": timeout_s},
        }
        block = init_block(Path(tmp) / "block", "eval", config_text=yaml.safe_dump(config, sort_keys=False))
        outcome = run_job(prepare_job(block.config, "check"))
        return baseline_findings((r.task, r.variant, r.agent, r.outcome) for r in outcome.records)
