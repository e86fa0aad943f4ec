"""Run state lives in .trialbook/state.json; config.yaml's status section is a snapshot written
when a job starts and ends, never after each trial, and keeps the user's file as it was."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import make_block, write_task

from trialbook.app.pipeline import run_block
from trialbook.block.status import read_status, state_path, update_status

TB = [sys.executable, "-m", "trialbook.cli.main"]


def test_a_running_job_leaves_config_yaml_alone_between_start_and_end(tmp_path: Path) -> None:
    tasks = tmp_path / "extra"
    for i in range(4):
        write_task(tasks, f"t{i}", test_sh="echo 1 > /logs/verifier/reward.txt\n")
    root = make_block(tmp_path, extra_tasks_dir=tasks, concurrency=1)
    config = root / "config.yaml"
    config.write_text("# my notes\n" + config.read_text())
    config.chmod(0o600)
    seen: list[tuple[str, dict]] = []

    def progress(done: int, total: int, record: object) -> None:
        if record is not None:  # a trial finished (None: the job started)
            seen.append((config.read_text(), json.loads(state_path(config).read_text())))

    run_block(config, "j", progress=progress)
    texts = {text for text, _ in seen}
    assert len(texts) == 1  # one snapshot, written at the start, untouched while trials ran
    started = yaml.safe_load(next(iter(texts)))["status"]
    assert started["state"] == "running" and started["done"] == 0 and started["total"] == 4
    assert [state["done"] for _, state in seen] == [1, 2, 3, 4]  # the state file follows every trial
    final = yaml.safe_load(config.read_text())
    assert final["status"]["state"] == "completed" and final["status"]["done"] == 4
    assert config.read_text().startswith("# my notes\n") and stat.S_IMODE(config.stat().st_mode) == 0o600
    assert read_status(config) == json.loads(state_path(config).read_text())
    shown = subprocess.run([*TB, "status", "--json", "--block", str(root)], capture_output=True, text=True)
    assert json.loads(shown.stdout)["done"] == 4 and json.loads(shown.stdout)["last_archive"] == 1


def test_status_of_an_older_block_and_a_damaged_state_file(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("kind: eval\nstatus:\n  state: completed\n  done: 3\n")
    assert read_status(config) == {"state": "completed", "done": 3}  # no state file yet: the config's
    state_path(config).parent.mkdir()
    state_path(config).write_text('{"state": "runn')  # torn write
    assert read_status(config)["done"] == 3
    update_status(config, {"done": 4}, snapshot=False)
    assert json.loads(state_path(config).read_text()) == {"state": "completed", "done": 4}
    assert yaml.safe_load(config.read_text())["status"]["done"] == 3
    before = os.stat(config).st_mtime_ns
    update_status(config, {}, snapshot=True)
    assert yaml.safe_load(config.read_text())["status"]["done"] == 4 and os.stat(config).st_mtime_ns >= before
