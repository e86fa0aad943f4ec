"""``trialbook analyze`` shows the end of what the verifier and the agent printed, read safely."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from conftest import requires_bwrap, write_task

from trialbook.inspect.tails import read_tail

FIXTURES = Path(__file__).parent / "fixtures"


def tb(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "trialbook.cli.main", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=60)


def test_read_tail_keeps_last_lines_and_refuses_links_and_fifos(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("".join(f"line {i}\n" for i in range(200_000)))
    assert read_tail(big, max_lines=3) == "line 199997\nline 199998\nline 199999"
    secret = tmp_path / "secret.txt"
    secret.write_text("do not show\n")
    (tmp_path / "link.txt").symlink_to(secret)
    assert read_tail(tmp_path / "link.txt") is None
    os.mkfifo(tmp_path / "fifo.txt")
    done: list[str | None] = []
    reader = threading.Thread(target=lambda: done.append(read_tail(tmp_path / "fifo.txt")), daemon=True)
    reader.start()
    reader.join(5)
    assert done == [None]  # returned at once: a FIFO is not waited on
    assert read_tail(tmp_path / "missing.txt") is None


@requires_bwrap
def test_analyze_shows_verifier_and_agent_output_of_a_failed_trial(block_factory, tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    write_task(extra, "fails-loudly", test_sh="echo 'FAILED test_sum: expected 55, got 45'\necho 0 > /logs/verifier/reward.txt\n",
               solve_sh="#!/usr/bin/env bash\necho 'cannot find calc.py' >&2\nexit 0\n")
    root = block_factory(extra_tasks_dir=extra)
    assert tb("run", "--job", "j", cwd=root).returncode == 0
    human = tb("analyze", "--last", "--trial", "1", cwd=root)
    assert human.returncode == 0, human.stderr
    assert "verifier output (last lines)" in human.stdout and "expected 55, got 45" in human.stdout
    assert "agent output (last lines)" in human.stdout and "cannot find calc.py" in human.stdout
    data = json.loads(tb("analyze", "--last", "--trial", "1", "--json", cwd=root).stdout)
    assert "expected 55, got 45" in data["output_tails"]["verifier_output"]
    assert data["output_tails"]["agent_output"] == "cannot find calc.py"


def test_analyze_shows_harbor_verifier_output() -> None:
    job = FIXTURES / "harbor" / "jobs" / "mixed-agents"
    first = json.loads(tb("analyze", str(job), "--json", "--trial", "1").stdout)
    assert first["outcome"] == "unresolved"
    expected = (job / first["trial"] / "verifier" / "test-stdout.txt").read_text().strip().splitlines()[-20:]
    assert first["output_tails"]["verifier_output"].splitlines() == expected
    assert first["output_tails"]["verifier_output"].endswith("AssertionError\nFAIL test_add_zero")
