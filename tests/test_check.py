"""``trialbook check`` and ``run`` find every broken task at once, as a user sees it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import requires_bwrap, write_task

from trialbook.errors import TaskError
from trialbook.run.tasks import load_harbor_dataset


def tb(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "trialbook.cli.main", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def _dataset(root: Path) -> Path:
    ds = root / "tasks"
    write_task(ds, "good", test_sh="echo 1 > /logs/verifier/reward.txt\n")
    (write_task(ds, "no-test", test_sh="x") / "tests" / "test.sh").unlink()
    write_task(ds, "bad-toml", test_sh="echo 1 > /logs/verifier/reward.txt\n", toml="version = [\n")
    write_task(ds, "no-instruction", test_sh="echo 1 > /logs/verifier/reward.txt\n", instruction="  \n")
    write_task(ds, "bad-shell", test_sh="if then fi (\n")
    for script in ds.glob("*/*/*.sh"):
        script.chmod(0o755)
    return ds


def test_check_reports_every_problem_at_once(tmp_path: Path) -> None:
    ds = _dataset(tmp_path)
    res = tb("check", str(ds), "--json")
    assert res.returncode == 1, res.stderr
    out = json.loads(res.stdout)
    errors = {(p["task"], p["message"].split(":")[0]) for p in out["problems"] if p["severity"] == "error"}
    assert errors == {("no-test", "missing tests/test.sh"), ("bad-toml", "task.toml is not valid TOML"),
                      ("no-instruction", "instruction.md is empty"),
                      ("bad-shell", "tests/test.sh has a shell syntax error")}
    assert out["n_tasks"] == 5 and out["n_broken"] == 4 and out["ok"] is False
    one = tb("check", str(ds / "good"))
    assert one.returncode == 0 and "1 tasks checked: 0 with errors, 0 baseline findings: ok" in one.stdout
    (ds / "good" / "tests" / "test.sh").chmod(0o644)
    warned = json.loads(tb("check", str(ds / "good"), "--json").stdout)
    assert warned["ok"] is True and [p["severity"] for p in warned["problems"]] == ["warning"]


def test_loading_a_dataset_names_every_broken_task(tmp_path: Path) -> None:
    ds = _dataset(tmp_path)
    (ds / "bad-shell").rename(ds / "zz-fine-for-the-loader")  # syntax is only checked by `check`
    with pytest.raises(TaskError) as err:
        load_harbor_dataset(ds)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{ds}: 3 broken tasks: ")
    for name in ("bad-toml (task.toml is not valid TOML", "no-instruction (instruction.md is empty)",
                 "no-test (missing tests/test.sh)"):
        assert name in message
    assert f"(details: trialbook check {ds})" in message


@requires_bwrap
def test_check_run_finds_what_the_baselines_say(tmp_path: Path) -> None:
    ds = tmp_path / "tasks"
    write_task(ds, "solvable", test_sh="test -f /app/done && echo 1 > /logs/verifier/reward.txt || echo 0 > /logs/verifier/reward.txt\n",
               solve_sh="#!/usr/bin/env bash\ntouch /app/done\n")
    write_task(ds, "free-pass", test_sh="echo 1 > /logs/verifier/reward.txt\n")
    write_task(ds, "wrong-test", test_sh="echo 0 > /logs/verifier/reward.txt\n",
               solve_sh="#!/usr/bin/env bash\ntouch /app/done\n")
    res = tb("check", str(ds), "--run", "--json")
    assert res.returncode == 1, res.stderr
    found = {(f["kind"], f["task"]) for f in json.loads(res.stdout)["baseline_findings"]}
    assert found == {("nop_passes", "free-pass"), ("oracle_fails", "wrong-test")}
