"""``environment.type: podman`` for real: a Harbor task's Dockerfile is built and each trial runs
in its own container (the base image is made offline: tests/container_engine.py)."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import make_block, write_task
from container_engine import ENGINE_FLAGS, RUN_FLAGS, base_image, podman

from trialbook.app.pipeline import run_block
from trialbook.errors import ServiceUnavailableError
from trialbook.run.environments.container import job_key
from trialbook.run.scheduler import prepare_job

PODMAN = {"type": "podman", "engine_flags": ENGINE_FLAGS, "run_flags": RUN_FLAGS}

TEST_SH = """\
#!/bin/bash
sleep "${GRADE_DELAY:-0}"
if [ "$(cat /app/answer.txt 2>/dev/null)" = tool-output ] && [ -f /app/data.txt ]; then
  echo PASS; echo 1 > /logs/verifier/reward.txt
else
  echo FAIL; echo 0 > /logs/verifier/reward.txt
fi
"""


@pytest.fixture(scope="module")
def base() -> str:
    return base_image()


def _tool_task(root: Path, base: str, name: str = "tool-task", toml: str = 'version = "1.0"\n',
               test_sh: str = TEST_SH) -> Path:
    """A task whose answer needs a tool only its image has; a fresh data file makes a new image."""
    d = write_task(root, name, test_sh=test_sh, toml=toml,
                   solve_sh="#!/bin/bash\n/opt/tool/onlyimage > /app/answer.txt\n",
                   env_files={"data.txt": secrets.token_hex(8) + "\n"})
    (d / "environment" / "Dockerfile").write_text(
        f"FROM {base}\nWORKDIR /app\nCOPY data.txt /app/data.txt\n"
        "RUN mkdir -p /opt/tool && printf '#!/bin/sh\\necho tool-output\\n' > /opt/tool/onlyimage"
        " && chmod +x /opt/tool/onlyimage\n")
    return d


def _trials(job_dir: Path) -> dict[str, dict[str, Any]]:
    return {json.loads(p.read_text())["variant"]: json.loads(p.read_text()) for p in job_dir.glob("*/trial.json")}


def _containers_of(root: Path, job: str) -> list[str]:
    key = job_key(root / ".trialbook" / "scratch" / job)
    return podman("ps", "-a", "-q", "--filter", f"label=trialbook.job={key}").stdout.split()


def test_oracle_resolves_nop_does_not_one_build_for_two_concurrent_trials(tmp_path: Path, base: str) -> None:
    src = tmp_path / "src"
    _tool_task(src, base)
    root = make_block(tmp_path, extra_tasks_dir=src, concurrency=2, environment=PODMAN,
                      variants=[{"name": "oracle", "agent": "oracle"}, {"name": "nop", "agent": "nop"}])
    out = run_block(root / "config.yaml", "j").outcome
    trials = _trials(out.job_dir)
    assert trials["oracle"]["outcome"] == "resolved", trials["oracle"]
    assert trials["nop"]["outcome"] == "unresolved"
    envs = [t["extra"]["environment"] for t in trials.values()]
    assert len({e["image"] for e in envs}) == 1 and sorted(e["built"] for e in envs) == [False, True]
    assert trials["oracle"]["extra"]["limits"]["enforced_by"] == "podman"
    assert podman("image", "exists", envs[0]["image"], check=False).returncode == 0
    assert _containers_of(root, "j") == []  # every trial's container is gone
    assert "PASS" in (out.job_dir / "tool-task__oracle__1" / "evaluation" / "test_output.txt").read_text()

    # the same task in the local sandbox: the host has no /opt/tool, so the oracle cannot solve it
    if shutil.which("bwrap"):
        config = yaml.safe_load((root / "config.yaml").read_text())
        config["environment"] = {"type": "local"}
        config["variants"] = [{"name": "oracle", "agent": "oracle"}]
        (root / "config.yaml").write_text(yaml.safe_dump(config))
        local = _trials(run_block(root / "config.yaml", "local").outcome.job_dir)
        assert local["oracle"]["outcome"] in ("unresolved", "agent_error")


HOSTILE = r"""
if (echo > /dev/tcp/1.1.1.1/53) 2>/dev/null; then echo net-on; else echo net-off; fi > /logs/agent/net.txt
ls /sys/class/net > /logs/agent/ifaces.txt
echo 1 > /logs/verifier/reward.txt
{ echo 'echo 1 > /logs/verifier/reward.txt' > /tests/test.sh; } 2> /logs/agent/tests-write.txt
(sleep 2; echo 1 > /logs/verifier/reward.txt; echo 'exit 0' > /tests/test.sh) > /dev/null 2>&1 &
echo pwned > /etc/passwd
echo pwned > CANARY 2> /logs/agent/canary.txt
true
"""


def test_network_off_and_a_hostile_agent_changes_no_grade_and_no_host_file(tmp_path: Path, base: str) -> None:
    canary = tmp_path / "canary.txt"
    canary.write_text("host file\n")
    passwd = hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest()
    src = tmp_path / "src"
    _tool_task(src, base)
    root = make_block(tmp_path, extra_tasks_dir=src, environment={**PODMAN, "env": {"GRADE_DELAY": "4"}},
                      variants=[{"name": "hostile", "agent": "command",
                                 "command": HOSTILE.replace("CANARY", str(canary))}])
    out = run_block(root / "config.yaml", "j").outcome
    trial = _trials(out.job_dir)["hostile"]
    agent = out.job_dir / "tool-task" / "agent"
    assert (agent / "net.txt").read_text().strip() == "net-off"
    assert (agent / "ifaces.txt").read_text().split() == ["lo"]
    assert "Read-only file system" in (agent / "tests-write.txt").read_text()
    # the planted reward was discarded, the background writer died with the agent phase
    assert trial["extra"]["discarded_before_verifier"] == ["reward.txt"]
    assert trial["outcome"] == "unresolved" and trial["reward"] == 0.0
    assert "FAIL" in (out.job_dir / "tool-task" / "evaluation" / "test_output.txt").read_text()
    assert canary.read_text() == "host file\n"
    assert hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest() == passwd
    assert _containers_of(root, "j") == []


def test_memory_and_process_limits_stop_the_trial_with_the_reason(tmp_path: Path, base: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # podman's conmon writes an `oom` file where it starts: never here
    src = tmp_path / "src"
    _tool_task(src, base, "hog", toml='version = "1.0"\n[environment]\nmemory_mb = 64\n')
    _tool_task(src, base, "forker", toml='version = "1.0"\n[environment]\npids = 16\n')
    root = make_block(tmp_path, extra_tasks_dir=src, environment=PODMAN, variants=[{
        "name": "greedy", "agent": "command",
        "command": 'case "$TRIALBOOK_TASK" in '
                   "hog) x=$(head -c 300000000 /dev/zero | tr '\\0' a); echo survived ;; "
                   "forker) for i in {1..40}; do sleep 5 & done; wait ;; esac"}])
    out = run_block(root / "config.yaml", "j").outcome
    by_task = {json.loads(p.read_text())["task"]: json.loads(p.read_text()) for p in out.job_dir.glob("*/trial.json")}
    assert by_task["hog"]["outcome"] == "agent_error"
    assert by_task["hog"]["reason"] == "agent: memory limit 64 MiB exceeded"
    assert by_task["hog"]["exception"]["type"] == "ResourceLimitExceeded"
    assert by_task["forker"]["outcome"] == "agent_error"
    assert by_task["forker"]["reason"] == "agent: process limit 16 reached"
    assert _containers_of(root, "j") == []
    assert list(cwd.iterdir()) == []


def test_no_running_engine_is_one_line_before_any_trial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "docker"
    fake.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
                    "Is the docker daemon running?' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    src = tmp_path / "src"
    write_task(src, "t", test_sh="true\n")
    root = make_block(tmp_path, extra_tasks_dir=src, environment={"type": "docker"})
    with pytest.raises(ServiceUnavailableError) as err:
        prepare_job(root / "config.yaml", "j")
    assert str(err.value) == ("environment.type docker: the docker engine is not running: Cannot connect to the "
                              "Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?")
    res = subprocess.run([sys.executable, "-m", "trialbook.cli.main", "run", "--job", "j"], cwd=root, capture_output=True,
                         text=True, env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert res.returncode == 5 and "docker engine is not running" in res.stderr and "Traceback" not in res.stderr


def test_kill_9_leaves_a_container_that_the_resume_removes_then_clean_images(tmp_path: Path, base: str) -> None:
    src = tmp_path / "src"
    _tool_task(src, base)
    root = make_block(tmp_path, extra_tasks_dir=src, environment=PODMAN,
                      timeouts={"environment_setup": 60, "agent": 4, "verifier": 30},
                      variants=[{"name": "sleepy", "agent": "command", "command": "sleep 60"}])
    runner = subprocess.Popen([sys.executable, "-m", "trialbook.cli.main", "run", "--job", "j"], cwd=root,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not _containers_of(root, "j") and time.monotonic() < deadline:
            time.sleep(0.3)
        assert _containers_of(root, "j"), "no container started"
    finally:
        os.killpg(runner.pid, signal.SIGKILL)
        runner.wait()
    assert len(_containers_of(root, "j")) == 1  # orphaned by the kill
    out = run_block(root / "config.yaml", "j").outcome  # the resume
    assert _trials(out.job_dir)["sleepy"]["outcome"] == "timeout"
    assert _containers_of(root, "j") == []
    image = _trials(out.job_dir)["sleepy"]["extra"]["environment"]["image"]
    res = subprocess.run([sys.executable, "-m", "trialbook.cli.main", "clean", "--images", "--json"], cwd=root,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert image in json.loads(res.stdout)["images"]
    assert podman("image", "exists", image, check=False).returncode != 0
    assert podman("image", "exists", base, check=False).returncode == 0  # not trialbook's: kept
