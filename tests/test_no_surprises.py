"""Destructive or surprising defaults: clean asks first, convert never silently replaces data."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

from conftest import requires_bwrap

FIXTURES = Path(__file__).parent / "fixtures"
TB = [sys.executable, "-m", "trialbook.cli.main"]


def test_convert_refuses_to_replace_an_earlier_conversion(tmp_path: Path) -> None:
    job = FIXTURES / "harbor" / "jobs" / "mixed-agents"
    out = tmp_path / "sft"
    first = subprocess.run([*TB, "convert", str(job), "--out", str(out), "--all", "--json"],
                           capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    before = (out / "lf.json").read_bytes()
    (out / "lf.json").write_bytes(before + b"\n")  # a curated file must survive
    again = subprocess.run([*TB, "convert", str(job), "--out", str(out)], capture_output=True, text=True)
    assert again.returncode == 4 and "an earlier conversion is there" in again.stderr and "--force" in again.stderr
    assert (out / "lf.json").read_bytes() == before + b"\n"
    forced = subprocess.run([*TB, "convert", str(job), "--out", str(out), "--all", "--force"],
                            capture_output=True, text=True)
    assert forced.returncode == 0, forced.stderr
    assert (out / "lf.json").read_bytes() == before


def _on_a_terminal(args: list[str], cwd: Path, answer: bytes) -> tuple[int, str]:
    """Run a command with a pseudo-terminal as its stdin/stdout, typing ``answer``."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command, on the terminal
        os.chdir(cwd)
        os.execv(sys.executable, [sys.executable, "-m", "trialbook.cli.main", *args])
    out = b""
    deadline = time.monotonic() + 60
    answered = False
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        if not answered and b"?" in out:
            os.write(fd, answer)
            answered = True
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


@requires_bwrap
def test_clean_asks_on_a_terminal(block_factory) -> None:
    root = block_factory(tasks=["hello-world"])
    assert subprocess.run([*TB, "run", "--job", "j"], cwd=root, capture_output=True).returncode == 0
    code, screen = _on_a_terminal(["clean"], root, b"n\n")
    assert code == 0 and "Remove " in screen and "nothing removed" in screen
    assert (root / "artifacts" / "jobs" / "j").is_dir()
    code, screen = _on_a_terminal(["clean"], root, b"y\n")
    assert code == 0 and not (root / "artifacts" / "jobs").exists()
    assert (root / "artifacts" / "archives").is_dir()  # archives are never cleaned
    res = subprocess.run([*TB, "clean", "--json"], cwd=root, capture_output=True, text=True)
    assert res.returncode == 0 and json.loads(res.stdout)["dry_run"] is False  # scripts are not asked
