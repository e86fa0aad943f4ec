"""The bundled demo under ``environment.type: podman`` and ``docker`` gives the same job results as
under ``local``: same outcomes, rewards, reasons and pass@k per variant and task.

The demo's tasks build from ``FROM debian:bookworm-slim`` / ``FROM python:3.11-slim``: local
stand-ins made offline (tests/demo_images.py). ``docker`` is the Docker command line: with no
Docker daemon on the test machines, it talks to Podman's Docker-compatible API
(``podman system service`` on a private socket, ``DOCKER_HOST``) configured, as an administrator
would configure a daemon, with runc and ulimits in its own containers.conf, so the block's
config is just ``environment: {type: docker}``. Where ``docker`` is Debian's ``podman-docker``
(a ``docker`` command that runs podman) the same containers.conf applies to it.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from container_engine import ENGINE_FLAGS, RUN_FLAGS, docker_engine, podman
from demo_images import demo_base_images
from job_compare import comparable, differences

from trialbook.app.pipeline import run_block
from trialbook.cli.demo import create_demo_block
from trialbook.errors import ConfigError
from trialbook.run.environments.container import _storage_opt_refused, job_key

ATTEMPTS = 2
#: The demo's numbers at 2 attempts (oracle solves 4 of 5 tasks, broken-verifier is an error on purpose).
EXPECTED_OUTCOMES = {"resolved": 8, "unresolved": 8, "verifier_error": 4}
FRESH_TASK = "hello-world"  # its Dockerfile gets a fresh LABEL in the engine runs: one real build


def _demo(root: Path, environment: dict[str, Any], *, fresh_build: bool) -> Path:
    """The demo block, as ``trialbook demo`` makes it, with fewer attempts and ``environment``;
    with ``fresh_build`` one task's Dockerfile gets a new label so the engine builds its image."""
    create_demo_block(root, environment["type"])  # as `trialbook demo --environment TYPE` makes it
    config = yaml.safe_load((root / "config.yaml").read_text())
    assert config["environment"]["type"] == environment["type"]
    config["attempts"] = ATTEMPTS
    config["environment"].update(environment)
    (root / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    if fresh_build:
        dockerfile = root / "tasks" / FRESH_TASK / "environment" / "Dockerfile"
        dockerfile.write_text(dockerfile.read_text() + f"LABEL trialbook-test.nonce={secrets.token_hex(6)}\n")
    return root


def _run(root: Path) -> Path:
    return run_block(root / "config.yaml", "demo").outcome.job_dir


@pytest.fixture(scope="module")
def local_demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if shutil.which("bwrap") is None:
        pytest.skip("bwrap is not installed")
    root = _demo(tmp_path_factory.mktemp("local") / "block", {"type": "local"}, fresh_build=False)
    found = comparable(_run(root))
    # the reference itself is the demo's known result, so equality below cannot come from two broken runs
    assert found["results"]["outcomes"] == EXPECTED_OUTCOMES, found["results"]
    return found


def _check_engine_run(root: Path, job_dir: Path, engine: str, local: dict[str, Any]) -> None:
    """Same results as ``local``; every trial ran in ``engine``'s container of its task's image,
    the fresh task's image was built once by this job, and no container is left."""
    got = comparable(job_dir)
    diff = differences(local, got)
    assert not diff, "\n".join(diff[:20])
    trials = [json.loads(p.read_text()) for p in job_dir.glob("*/trial.json")]
    assert len(trials) == 5 * 2 * ATTEMPTS
    for trial in trials:
        env = trial["extra"]["environment"]
        assert env["type"] == engine and env["image"].startswith(f"localhost/trialbook/{trial['task']}:"), trial
        assert trial["extra"]["limits"]["enforced_by"] == engine
    built = [t["extra"]["environment"]["built"] for t in trials if t["task"] == FRESH_TASK]
    assert sorted(built) == [False] * (len(built) - 1) + [True]
    key = job_key(root / ".trialbook" / "scratch" / "demo")
    assert podman("ps", "-a", "-q", "--filter", f"label=trialbook.job={key}").stdout.split() == []


def _remove_image_of(job_dir: Path, task: str) -> None:
    """The fresh image is this test's alone: remove it so test runs do not pile images up."""
    for p in job_dir.glob(f"{task}__*/trial.json"):
        podman("rmi", "-f", json.loads(p.read_text())["extra"]["environment"]["image"], check=False)
        return


def test_demo_under_podman_matches_local(tmp_path: Path, local_demo: dict[str, Any]) -> None:
    demo_base_images()
    environment = {"type": "podman", "engine_flags": ENGINE_FLAGS, "run_flags": RUN_FLAGS}
    root = _demo(tmp_path / "block", environment, fresh_build=True)
    job_dir = _run(root)
    try:
        _check_engine_run(root, job_dir, "podman", local_demo)
    finally:
        _remove_image_of(job_dir, FRESH_TASK)


@pytest.fixture
def docker_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    demo_base_images()
    with docker_engine(tmp_path) as (what, env):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield what


def test_demo_under_docker_matches_local(tmp_path: Path, local_demo: dict[str, Any], docker_env: str) -> None:
    root = _demo(tmp_path / "block", {"type": "docker"}, fresh_build=True)
    job_dir = _run(root)
    try:
        _check_engine_run(root, job_dir, "docker", local_demo)
    finally:
        _remove_image_of(job_dir, FRESH_TASK)


@pytest.mark.parametrize("message", [
    "Error: storage option overlay.size and overlay.inodes only supported for backingFS XFS. Found extfs",
    "docker: Error response from daemon: --storage-opt is supported only for overlay over xfs with 'pquota' "
    "mount option",
])
def test_both_engines_wordings_of_a_storage_driver_without_size_limits_are_recognised(message: str) -> None:
    assert _storage_opt_refused(message)
    assert not _storage_opt_refused("Error: image not known")


def test_demo_environment_option_refuses_what_it_cannot_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="use one of local, podman, docker"):
        create_demo_block(tmp_path / "d", "kubernetes")
    res = subprocess.run([sys.executable, "-m", "trialbook.cli.main", "demo", str(tmp_path / "d"), "--swe", "-e",
                          "podman"], capture_output=True, text=True)
    assert res.returncode != 0 and "local environment only" in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert not (tmp_path / "d").exists()
