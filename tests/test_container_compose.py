"""A Harbor task with a ``docker-compose.yaml``, for real with podman and podman-compose: the
trial's container (service ``main``) and a sidecar built from the task's files share a network
of their own that reaches nothing else; ``main``'s variables reach every command; everything
(containers, the network) is gone after the job; a service that could reach the host is
refused before any trial."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import yaml
from conftest import make_block, write_task
from container_engine import ENGINE_FLAGS, RUN_FLAGS, base_image, podman

from trialbook.app.pipeline import run_block
from trialbook.config import EnvironmentConfig
from trialbook.errors import ConfigError
from trialbook.jsonio import read_json
from trialbook.run.environments.container import PodmanEnvironment, job_key
from trialbook.run.scheduler import prepare_job

PODMAN = {"type": "podman", "engine_flags": ENGINE_FLAGS, "run_flags": RUN_FLAGS}

SOLVE = """\
#!/bin/bash
python3 - <<'PY'
import os, socket, time, urllib.request
for _ in range(100):  # the service may still be starting
    try:
        body = urllib.request.urlopen(os.environ["DB_URL"] + "/secret.txt", timeout=2).read()
        break
    except OSError:
        time.sleep(0.2)
open("/app/answer.txt", "wb").write(body)
try:
    socket.create_connection(("1.1.1.1", 80), timeout=3).close()
    outside = "connected"
except OSError as exc:
    outside = type(exc).__name__
open("/logs/agent/outside.txt", "w").write(outside)
PY
"""

TEST_SH = """\
#!/bin/bash
if [ "$(cat /app/answer.txt)" = "$EXPECTED" ]; then echo 1; else echo 0; fi > /logs/verifier/reward.txt
"""

COMPOSE = {"services": {
    "main": {"build": {"context": "."}, "environment": {"DB_URL": "http://db:8000"}, "depends_on": ["db"]},
    "db": {"build": {"context": "db"}, "command": ["python3", "-m", "http.server", "8000"]},
}}


def _compose_task(root: Path, image: str, secret: str, compose: dict) -> Path:
    d = write_task(root, "with-db", test_sh=TEST_SH, solve_sh=SOLVE)
    env = d / "environment"
    (env / "Dockerfile").write_text(f"FROM {image}\nWORKDIR /app\n")
    (env / "db").mkdir()
    (env / "db" / "secret.txt").write_text(secret)
    (env / "db" / "Dockerfile").write_text(f"FROM {image}\nWORKDIR /srv\nCOPY secret.txt /srv/secret.txt\n")
    (env / "docker-compose.yaml").write_text(yaml.safe_dump(compose))
    return d


def _job_leftovers(root: Path, job: str) -> tuple[list[str], list[str]]:
    key = job_key(root / ".trialbook" / "scratch" / job)
    label = f"label=trialbook.job={key}"
    return (podman("ps", "-a", "-q", "--filter", label).stdout.split(),
            podman("network", "ls", "-q", "--filter", label).stdout.split())


def test_compose_sidecar_on_a_private_network(tmp_path: Path) -> None:
    image = base_image("python")
    secret = secrets.token_hex(8)
    src = tmp_path / "src"
    _compose_task(src, image, secret, COMPOSE)
    root = make_block(tmp_path, extra_tasks_dir=src, environment={**PODMAN, "env": {"EXPECTED": secret}},
                      timeouts={"environment_setup": 120, "agent": 60, "verifier": 30},
                      variants=[{"name": "oracle", "agent": "oracle"}, {"name": "nop", "agent": "nop"}])
    job = run_block(root / "config.yaml", "job").outcome.job_dir
    trials = {read_json(p)["variant"]: read_json(p) for p in job.glob("*/trial.json")}
    assert trials["oracle"]["outcome"] == "resolved", trials["oracle"]
    assert trials["nop"]["outcome"] == "unresolved"
    assert trials["oracle"]["extra"]["environment"]["services"] == ["db"]
    assert (job / "with-db__oracle__1" / "agent" / "outside.txt").read_text() != "connected"
    assert _job_leftovers(root, "job") == ([], [])
    # what a killed runner leaves (a labelled network, a service's container) goes when the job resumes
    scratch = root / ".trialbook" / "scratch" / "job"
    label = f"trialbook.job={job_key(scratch)}"
    podman("network", "create", "--internal", "--label", label, f"left-{secrets.token_hex(3)}")
    podman("run", "-d", "--label", label, *RUN_FLAGS, "--network", "none", image, "sleep", "600")
    assert all(_job_leftovers(root, "job"))
    PodmanEnvironment.job_started(EnvironmentConfig(**PODMAN), scratch)
    assert _job_leftovers(root, "job") == ([], [])
    sidecar = podman("images", "--format", "{{.Repository}}", "--filter", "label=trialbook.managed=1").stdout
    assert "localhost/trialbook/with-db-db" in sidecar  # built once, like the task's image


@pytest.mark.parametrize(("service", "message"), [
    ({"image": "x", "privileged": True}, "services.db.privileged is not supported"),
    ({"image": "x", "volumes": ["/etc:/host-etc"]}, "only named volumes"),
    ({"image": "x", "ports": ["8000:8000"]}, "services.db.ports is not supported"),
    ({"build": {"context": "../.."}}, "must be inside the task's environment/"),
])
def test_a_service_that_could_reach_the_host_is_refused_at_start(tmp_path: Path, service: dict, message: str) -> None:
    base_image()  # an engine that answers (preflight asks it first)
    src = tmp_path / "src"
    _compose_task(src, "unused", "s", {"services": {"main": {}, "db": service}})
    root = make_block(tmp_path, extra_tasks_dir=src, environment=PODMAN)
    with pytest.raises(ConfigError, match=message) as info:
        prepare_job(root / "config.yaml")
    assert "docker-compose.yaml" in str(info.value)
