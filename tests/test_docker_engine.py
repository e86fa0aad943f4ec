"""``environment.type: docker`` through the same code as podman, for the parts the demo does not
touch: a task that needs a tool only its image has, limits enforced by the engine and read back
as the trial's reason, the network off and a hostile agent, and no container left. The ``docker`` command is the Docker CLI against Podman's
Docker-compatible API, or podman-docker (tests/container_engine.py ``docker_engine``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_block
from container_engine import base_image, docker_engine
from test_containers import HOSTILE, _containers_of, _tool_task

from trialbook.app.pipeline import run_block


@pytest.fixture
def docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The base image's tag, with a working ``docker`` for the test's duration."""
    base = base_image()
    with docker_engine(tmp_path / "engine") as (_, env):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield base


def test_docker_image_tool_limits_network_off_and_a_hostile_agent(tmp_path: Path, docker: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    canary = tmp_path / "canary.txt"
    canary.write_text("host file\n")
    src = tmp_path / "src"
    _tool_task(src, docker, "hog", toml='version = "1.0"\n[environment]\nmemory_mb = 64\n')
    _tool_task(src, docker, "forker", toml='version = "1.0"\n[environment]\npids = 16\n')
    _tool_task(src, docker, "hostile")
    _tool_task(src, docker, "tool")
    root = make_block(tmp_path, extra_tasks_dir=src, concurrency=4,
                      environment={"type": "docker", "env": {"GRADE_DELAY": "4"}}, variants=[{
        "name": "greedy", "agent": "command",
        "command": 'case "$TRIALBOOK_TASK" in '
                   "hog) x=$(head -c 300000000 /dev/zero | tr '\\0' a); echo survived ;; "
                   "forker) for i in {1..40}; do sleep 5 & done; wait ;; "
                   "tool) /opt/tool/onlyimage > /app/answer.txt ;; "
                   "hostile) " + HOSTILE.replace("CANARY", str(canary)) + " ;; esac"}])
    out = run_block(root / "config.yaml", "j").outcome
    by_task = {json.loads(p.read_text())["task"]: json.loads(p.read_text()) for p in out.job_dir.glob("*/trial.json")}
    assert by_task["hog"]["outcome"] == "agent_error", by_task["hog"]
    assert by_task["hog"]["reason"] == "agent: memory limit 64 MiB exceeded"
    assert by_task["forker"]["reason"] == "agent: process limit 16 reached"
    assert by_task["hog"]["extra"]["limits"]["enforced_by"] == "docker"
    assert by_task["tool"]["outcome"] == "resolved"  # with a tool only the task's image has
    assert by_task["tool"]["extra"]["environment"]["type"] == "docker"
    hostile = by_task["hostile"]
    agent = out.job_dir / "hostile" / "agent"  # one variant, one attempt: trial dirs are named by task
    assert (agent / "net.txt").read_text().strip() == "net-off"
    assert (agent / "ifaces.txt").read_text().split() == ["lo"]
    assert hostile["extra"]["discarded_before_verifier"] == ["reward.txt"]
    assert hostile["outcome"] == "unresolved" and hostile["reward"] == 0.0  # the late writer died with its phase
    assert canary.read_text() == "host file\n"
    assert _containers_of(root, "j") == [] and list(cwd.iterdir()) == []
