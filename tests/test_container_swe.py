"""SWE-style instances in real podman containers: the agent phase in a container of the instance's
image (a named one, or one built from its own Dockerfile), grading in a fresh container of the
same image. The bundled example instances get the same report.json as in the local sandbox; an
instance whose tests need a tool only its image has is resolved only there; an image that is
neither here nor pullable is an infra_error naming it; no container is left."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import requires_bwrap
from container_engine import ENGINE_FLAGS, RUN_FLAGS, base_image, podman
from test_swe_e2e import CLAMP, MEAN, MEDIAN, ROWS, VERSION, swe_block

from trialbook.app.pipeline import run_block
from trialbook.errors import ConfigError
from trialbook.jsonio import read_json
from trialbook.run.environments.container import job_key
from trialbook.run.scheduler import prepare_job

pytestmark = requires_bwrap  # the comparison runs the same instances in the local sandbox

PODMAN = {"type": "podman", "engine_flags": ENGINE_FLAGS, "run_flags": RUN_FLAGS}
TOOL = "calc__clamp-tool"
ABSENT = "calc__clamp-absent"


def _rows(image: str) -> list[dict]:
    named = [dict(ROWS[i], image_name=image) for i in (MEAN, VERSION)]
    built = [dict(ROWS[i], dockerfile="image/Dockerfile") for i in (CLAMP, MEDIAN)]
    # the tests pass only where /opt/calc-tool exists: in the image its Dockerfile makes
    tool = dict(ROWS[CLAMP], instance_id=TOOL, dockerfile="image/Dockerfile",
                test_cmd="test -x /opt/calc-tool && python3 -m unittest -v")
    absent = dict(ROWS[CLAMP], instance_id=ABSENT, image_name="localhost/trialbook-test/absent:never")
    return [*named, *built, tool, absent]


def _reports(job: Path) -> dict[str, dict]:
    found = {}
    for trial in job.glob("*/trial.json"):
        report = trial.parent / "evaluation" / "report.json"
        found[read_json(trial)["task"]] = read_json(report) if report.exists() else None
    return found


def test_swe_instances_in_containers_grade_like_local(tmp_path: Path) -> None:
    image = base_image("python", "git")
    root = swe_block(tmp_path, _rows(image), environment=PODMAN)
    (root / "image").mkdir()
    (root / "image" / "Dockerfile").write_text(
        f"FROM {image}\nRUN mkdir -p /opt && printf '#!/bin/sh\\n' > /opt/calc-tool && chmod +x /opt/calc-tool\n")
    job = run_block(root / "config.yaml", "pod").outcome.job_dir
    trials = {read_json(p)["task"]: read_json(p) for p in job.glob("*/trial.json")}
    assert trials[ABSENT]["outcome"] == "infra_error"
    assert "localhost/trialbook-test/absent:never" in trials[ABSENT]["reason"] and "pulled" in trials[ABSENT]["reason"]
    assert {t: r["outcome"] for t, r in trials.items() if t != ABSENT} == {
        CLAMP: "resolved", MEAN: "unresolved", MEDIAN: "unresolved", VERSION: "unresolved", TOOL: "resolved"}
    envs = {t: r["extra"]["environment"] for t, r in trials.items() if t != ABSENT}
    assert {envs[i]["image"] for i in (MEAN, VERSION)} == {image}
    built = {envs[i]["image"] for i in (CLAMP, MEDIAN, TOOL)}
    assert len(built) == 1 and built != {image}  # one Dockerfile, one image for three instances
    log = (job / f"{CLAMP}" / "evaluation" / "run_instance.log").read_text()
    assert "applying patch.diff: exit code 0" in log
    key = job_key(root / ".trialbook" / "scratch" / "pod")
    assert podman("ps", "-a", "-q", "--filter", f"label=trialbook.job={key}").stdout.split() == []

    # the same instances in the local sandbox: the same reports, but the tool instance is unresolved
    config = (root / "config.yaml").read_text().replace("type: podman", "type: local")
    (root / "config.yaml").write_text(config)
    local_job = run_block(root / "config.yaml", "local").outcome.job_dir
    pod, local = _reports(job), _reports(local_job)
    for iid in (CLAMP, MEAN, MEDIAN, VERSION):
        assert pod[iid] == local[iid], iid
    assert pod[TOOL][TOOL]["resolved"] is True and local[TOOL][TOOL]["resolved"] is False
    assert read_json(local_job / f"{ABSENT}" / "trial.json")["outcome"] == "resolved"


def test_instance_without_an_image_and_a_misplaced_dockerfile_are_refused_at_start(tmp_path: Path) -> None:
    root = swe_block(tmp_path, [dict(ROWS[CLAMP])], environment=PODMAN)
    with pytest.raises(ConfigError, match="names no image: give its row image_name"):
        prepare_job(root / "config.yaml")
    (root / "Dockerfile").write_text("FROM scratch\n")
    (root / "instances.jsonl").write_text(json.dumps(dict(ROWS[CLAMP], dockerfile="Dockerfile")) + "\n")
    with pytest.raises(ConfigError, match="in a directory of its own"):
        prepare_job(root / "config.yaml")
    (root / "instances.jsonl").write_text(json.dumps(dict(ROWS[CLAMP], dockerfile="d/Dockerfile",
                                                          image_name="x")) + "\n")
    with pytest.raises(ConfigError, match="image_name or dockerfile, not both"):
        prepare_job(root / "config.yaml")
