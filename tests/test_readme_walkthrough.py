"""The README's quick start works as written: each command, run in order in a fresh directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def quick_start_commands() -> list[str]:
    """The commands of the README's first code block under "## Quick start", comments removed."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Quick start"):]
    block = section[section.index("```bash\n") + len("```bash\n"):]
    block = block[:block.index("```")]
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def test_the_quick_start_runs_from_init_to_dashboard(tmp_path: Path) -> None:
    commands = quick_start_commands()
    assert commands[0] == "source .venv/bin/activate" and commands[-1] == "trialbook dashboard"
    # The venv is the one running the tests: activating it is putting its bin/ first on PATH.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "COLUMNS": "300"}
    script = "set -e\n" + "\n".join(f"echo '+ {c}'\n{c}" for c in commands[1:]) + "\n"
    res = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    block = tmp_path / "my-eval"
    assert (block / "dashboard" / "site" / "index.html").is_file()
    assert "findings: ok" in res.stdout and "outcomes: resolved=1, unresolved=1" in res.stdout
    assert f"Open file://{block / 'dashboard' / 'site' / 'index.html'}" in res.stdout
