"""Resource limits: a runaway trial is stopped alone, with its reason, as root and as a user."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import requires_bwrap, write_task
from unprivileged import give, remove, running_as_root, shared_tmpdir, trialbook

from trialbook.errors import ConfigError, TaskError
from trialbook.run.config import EnvironmentConfig
from trialbook.run.environments.limits import Limits, parse_size, task_requests
from trialbook.run.tasks import load_harbor_task

HELLO_TEST = ("test -f /app/hello.txt && echo 1 > /logs/verifier/reward.txt "
              "|| echo 0 > /logs/verifier/reward.txt\n")
AGENT = r"""
case "$TRIALBOOK_TASK" in
  hog) python3 -c "x = bytearray(8 * 1024**3); print(len(x))" || exit 1 ;;
  forks) for i in $(seq 200); do sleep 5 & done; wait ;;
  tmpfill) head -c 100000000 /dev/zero > /tmp/fill && echo filled > /app/tmp-ok ;;
esac
echo hi > /app/hello.txt
"""


def test_sizes_requests_and_caps() -> None:
    assert parse_size("4GiB", "x") == 4 * 1024**3 and parse_size("512M", "x") == 512 * 1000**2
    assert parse_size(2048, "x") == 2048
    with pytest.raises(ConfigError, match="environment.limits.memory: expected a size such as 4GiB"):
        parse_size("lots", "environment.limits.memory")
    assert task_requests({"memory_mb": 512, "cpus": 2}, "t") == Limits(memory=512 * 1024**2, cpus=2.0)
    assert task_requests({"memory": "1G"}, "t").memory == 1000**3
    env = EnvironmentConfig.model_validate({"limits": {"memory": "1GiB", "pids": 64},
                                            "max_limits": {"memory": "2GiB"}})
    assert env.effective_limits(Limits()) == Limits(memory=1024**3, pids=64, tmp=1024**3)
    assert env.effective_limits(Limits(memory=8 * 1024**3)).memory == 2 * 1024**3  # capped
    assert env.effective_limits(Limits(memory=512 * 1024**2)).memory == 512 * 1024**2


def test_bad_task_limits_name_the_task(tmp_path: Path) -> None:
    task = write_task(tmp_path, "greedy", test_sh="true\n", toml='version = "1.0"\n[environment]\ncpus = -1\n')
    with pytest.raises(TaskError, match="greedy: task.toml \\[environment\\] cpus must be a positive number"):
        load_harbor_task(task)


@requires_bwrap
@pytest.mark.parametrize("unprivileged", [False, True], ids=["as-root", "as-unprivileged-user"])
def test_runaway_trials_are_stopped_alone(unprivileged: bool) -> None:
    if unprivileged and not running_as_root():
        pytest.fail("this test starts the unprivileged run itself and must run as root (it does in CI)")
    base = shared_tmpdir()
    try:
        dataset = base / "tasks"
        for name in ("hog", "forks", "tmpfill", "calm"):
            write_task(dataset, name, test_sh=HELLO_TEST)
        root = base / "block"
        (root / "artifacts").mkdir(parents=True)
        (root / "config.yaml").write_text(yaml.safe_dump({
            "kind": "eval", "tasks": {"path": str(dataset)}, "concurrency": 4,
            "timeouts": {"environment_setup": 30, "agent": 60, "verifier": 30},
            "environment": {"limits": {"memory": "512MiB", "pids": 64, "tmp": "16MiB"}},
            "variants": [{"name": "c", "agent": "command", "command": AGENT}]}))
        if unprivileged:
            give(base)
        res = trialbook(["run", "--job", "j", "--json"], cwd=root, unprivileged=unprivileged)
        assert res.returncode == 0, res.stderr[-3000:]
        job = root / "artifacts" / "jobs" / "j"
        trials = {p.name: json.loads((p / "trial.json").read_text()) for p in job.iterdir()
                  if (p / "trial.json").exists()}
        assert trials["calm"]["outcome"] == "resolved"  # the sibling finished
        hog = trials["hog"]
        assert hog["outcome"] == "agent_error"
        if unprivileged:  # no cgroup for a user here: RLIMIT_AS made the allocation fail
            assert hog["extra"]["limits"]["enforced_by"] == "rlimit"
        else:
            assert hog["reason"] == "agent: memory limit 512 MiB exceeded"
            assert hog["exception"]["type"] == "ResourceLimitExceeded"
            forks = trials["forks"]
            assert forks["outcome"] == "agent_error" and forks["reason"] == "agent: process limit 64 reached"
        assert not (job / "tmpfill" / "agent").joinpath("tmp-ok").exists()
        assert "No space left on device" in (job / "tmpfill" / "agent" / "stderr.txt").read_text()
    finally:
        remove(base)


@requires_bwrap
def test_output_files_are_cut_at_50_mib(tmp_path: Path) -> None:
    from conftest import make_block

    from trialbook.run.pipeline import run_block
    from trialbook.run.trial import MAX_OUTPUT_BYTES

    root = make_block(tmp_path, tasks=["hello-world"], variants=[
        {"name": "loud", "agent": "command", "command": "head -c 60000000 /dev/zero | tr '\\0' x"}])
    out = run_block(root / "config.yaml", "j").outcome
    stdout = out.job_dir / "hello-world" / "agent" / "stdout.txt"
    data = stdout.read_bytes()
    assert len(data) < MAX_OUTPUT_BYTES + 200 and data.endswith(b"of 60000000 bytes]\n")
    record = json.loads((out.job_dir / "hello-world" / "trial.json").read_text())
    assert any("stdout.txt: 60000000 bytes of output" in n for n in record["extra"]["sandbox_notes"])
