"""docs/extending.md followed as written: its code blocks become a package outside trialbook
(an agent, a reader, a post-run step and their entry points), used through the CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import make_block, write_task

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"
TB = [sys.executable, "-m", "trialbook.cli.main"]


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def write_package(site: Path, *, installed: bool) -> None:
    """``toy_ext`` from the recipe's Python blocks (each starts with ``# toy_ext/NAME.py``), and,
    when ``installed``, a dist-info with the recipe's entry points, as pip would leave it."""
    for block in _blocks("python"):
        first, _, body = block.partition("\n")
        rel = first.removeprefix("# ").split(":")[0].strip()
        assert rel.startswith("toy_ext/"), first
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(block)
    (site / "toy_ext" / "__init__.py").write_text("")
    if installed:
        groups = tomllib.loads(_blocks("toml")[0])["project"]["entry-points"]
        info = site / "toy_ext-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-ext\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text("".join(
            f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in eps.items()) + "\n"
            for group, eps in groups.items()))


def _tb(args: list[str], cwd: Path, site: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site), "COLUMNS": "200"}
    return subprocess.run([*TB, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def _answer_block(tmp_path: Path, agent: str) -> Path:
    tasks = tmp_path / "extra"
    write_task(tasks, "answer", test_sh='[ "$(cat /app/answer.txt)" = 42 ] && echo 1 > /logs/verifier/reward.txt '
                                      '|| echo 0 > /logs/verifier/reward.txt\n')
    return make_block(tmp_path, extra_tasks_dir=tasks,
                      variants=[{"name": "echo", "agent": agent, "settings": {"answer": "42"}},
                                {"name": "wrong", "agent": agent, "settings": {"answer": "41"}}])


@pytest.mark.parametrize("installed", [False, True])
def test_an_agent_from_outside_the_package(tmp_path: Path, installed: bool) -> None:
    site = tmp_path / "site"
    write_package(site, installed=installed)
    root = _answer_block(tmp_path, "echo" if installed else "toy_ext.agents:EchoAgent")
    res = _tb(["run", "--job", "j", "--json"], root, site)
    assert res.returncode == 0, res.stderr
    trials = {json.loads(p.read_text())["variant"]: json.loads(p.read_text())
              for p in (root / "artifacts" / "jobs" / "j").glob("*/trial.json")}
    assert trials["echo"]["outcome"] == "resolved" and trials["wrong"]["outcome"] == "unresolved"
    assert trials["echo"]["n_turns"] == 1
    report = root / "artifacts" / "jobs" / "j" / "toy-report.txt"
    # The derived output runs only where the package is installed (its entry point registers it).
    assert report.read_text() == "1/2 resolved\n" if installed else not report.exists()


@pytest.mark.parametrize("installed", [False, True])
def test_an_environment_from_outside_the_package(tmp_path: Path, installed: bool) -> None:
    site = tmp_path / "site"
    write_package(site, installed=installed)
    root = _answer_block(tmp_path, "echo" if installed else "toy_ext.agents:EchoAgent")
    config = yaml.safe_load((root / "config.yaml").read_text())
    config["environment"] = {"type": "counting"} if installed else {"import_path": "toy_ext.envs:CountingEnvironment"}
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    res = _tb(["run", "--job", "j", "--json"], root, site)
    assert res.returncode == 0, res.stderr
    trials = {json.loads(p.read_text())["variant"]: json.loads(p.read_text())
              for p in (root / "artifacts" / "jobs" / "j").glob("*/trial.json")}
    assert trials["echo"]["outcome"] == "resolved" and trials["wrong"]["outcome"] == "unresolved"
    # the agent's one command and the verifier's test.sh, counted by the environment
    assert trials["echo"]["extra"]["environment"] == {"type": "counting", "commands": 2}


def test_a_reader_from_outside_the_package(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write_package(site, installed=False)
    tree = tmp_path / "toy-tree"
    tree.mkdir()
    (tree / "toy.json").write_text(json.dumps({"job": "toyjob", "trials": [
        {"task": "a", "ok": True}, {"task": "b", "ok": False}, {"task": "c", "ok": True}]}))
    res = _tb(["show", str(tree), "--json", "--no-write"], tmp_path, site)
    assert res.returncode != 0 and "no known results layout" in res.stderr  # not installed: not detected
    res = _tb(["show", str(tree), "--json", "--no-write", "--layout", "toy_ext.reader:ToyReader"], tmp_path, site)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["n_trials"] == 3 and summary["outcomes"] == {"resolved": 2, "unresolved": 1}
    write_package(site, installed=True)
    res = _tb(["show", str(tree), "--json", "--no-write"], tmp_path, site)  # detected through the entry point
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["layout"] == "toy"


def test_names_that_cannot_be_loaded_are_one_line_errors(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write_package(site, installed=False)
    for agent, message in (("toy_ext.agents:Nope", "agent 'toy_ext.agents:Nope': toy_ext.agents has no 'Nope'"),
                           ("toy_ext.missing:X", "agent 'toy_ext.missing:X': cannot import toy_ext.missing"),
                           ("toy_ext.reader:ToyReader", "not a subclass of trialbook.run.agents.base.Agent")):
        root = _answer_block(tmp_path / agent.replace(":", "_"), agent)
        res = _tb(["run", "--job", "j"], root, site)
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        assert message in " ".join(res.stderr.split()), res.stderr
