"""Resource limits: a runaway trial is stopped alone, with its reason, as root and as a user."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import make_block, requires_bwrap, write_task
from unprivileged import give, remove, running_as_root, shared_tmpdir, trialbook

from trialbook.config import EnvironmentConfig, load_config
from trialbook.errors import ConfigError, TaskError
from trialbook.model.limits import Limits, human, parse_size, task_requests
from trialbook.run.environments import cgroups
from trialbook.run.environments.capture import PipeReader
from trialbook.run.environments.guard import disk_usage
from trialbook.run.tasks import load_harbor_task

MiB, GiB = 1024**2, 1024**3
HELLO_TEST = ("test -f /app/hello.txt && echo 1 > /logs/verifier/reward.txt "
              "|| echo 0 > /logs/verifier/reward.txt\n")
#: One command agent; what it does depends on the task. Each case ends by writing hello.txt, so
#: a case the limits did not stop would be resolved.
AGENT = r"""
case "$TRIALBOOK_TASK" in
  hog) python3 -c "x = b'x' * (8 * 1024**3); print(len(x))" || exit 1 ;;
  hogs) python3 -c "
import os, time
for _ in range(4):
    if os.fork() == 0:
        x = b'x' * (200 * 1024**2); time.sleep(4); os._exit(0)
for _ in range(4):
    os.wait()
" ;;
  forkbomb) bash -c ':(){ :|:& };:' 2>/dev/null; sleep 4 ;;
  tmpfill) head -c 100000000 /dev/zero > /tmp/fill && echo filled > /app/tmp-ok ;;
  manyfiles) for i in $(seq 80); do head -c 1000000 /dev/zero > /app/f$i; sleep 0.1; done ;;
  bigfile) head -c 100000000 /dev/zero > /app/big; echo "big: $(stat -c %s /app/big)" >&2; rm -f /app/big ;;
  flood) yes flood | head -c 30000000 ;;
esac
echo hi > /app/hello.txt
"""
#: A test.sh over the memory limit (4 x 200 MB at once), then a reward it must not get to give.
HOGGING_TEST = """python3 -c "
import os, time
for _ in range(4):
    if os.fork() == 0:
        x = b'x' * (200 * 1024**2); time.sleep(4); os._exit(0)
for _ in range(4):
    os.wait()
"
echo 1 > /logs/verifier/reward.txt
"""
TASKS = {"hog": "", "hogs": "", "forkbomb": "", "tmpfill": "", "calm": "", "flood": "", "testhogs": "",
         "manyfiles": "[environment]\nstorage_mb = 20\n",      # asks for less disk than the default
         "bigfile": "[environment]\nstorage = \"40M\"\n"}      # Harbor's older spelling


def test_sizes_requests_and_caps() -> None:
    assert parse_size("4GiB", "x") == 4 * GiB and parse_size("512M", "x") == 512 * MiB  # Harbor's "2G" is binary
    assert parse_size("2GB", "x") == 2 * 1000**3 and parse_size(2048, "x") == 2048
    assert human(512 * MiB) == "512 MiB" and human(4 * GiB) == "4 GiB"
    for bad in ("lots", "-1G", 0, True, float("inf")):
        with pytest.raises(ConfigError, match="environment.limits.memory: "):
            parse_size(bad, "environment.limits.memory")
    assert task_requests({"memory_mb": 512, "cpus": 2}, "t") == Limits(memory=512 * MiB, cpus=2.0)
    assert task_requests({"memory": "1G", "storage_mb": 10240}, "t") == Limits(memory=GiB, storage=10 * GiB)
    assert task_requests({"memory": "2G", "memory_mb": 2048}, "t").memory == 2 * GiB  # agreeing spellings
    with pytest.raises(ConfigError, match=r"t \[environment\] memory = '1G' and memory_mb = 2048 disagree"):
        task_requests({"memory": "1G", "memory_mb": 2048}, "t")
    with pytest.raises(ConfigError, match=r"storage_mb must be a positive number of megabytes"):
        task_requests({"storage_mb": "lots"}, "t")

    env = EnvironmentConfig.model_validate({"limits": {"memory": "1GiB", "pids": 64, "output": "2MiB"},
                                            "max_limits": {"memory": "2GiB", "storage": "5GiB"}})
    assert env.effective_limits(Limits()) == Limits(memory=GiB, pids=64, tmp=GiB, storage=5 * GiB,
                                                    output=2 * MiB, reward_file=MiB)
    assert env.effective_limits(Limits(memory=8 * GiB)).memory == 2 * GiB  # capped
    assert env.effective_limits(Limits(memory=512 * MiB)).memory == 512 * MiB  # a smaller request wins
    assert env.effective_limits(Limits(storage=20 * MiB, pids=1000)) == Limits(
        memory=GiB, pids=1000, tmp=GiB, storage=20 * MiB, output=2 * MiB, reward_file=MiB)
    off = EnvironmentConfig.model_validate({"limits": {"memory": None, "pids": None, "tmp": None, "storage": None}})
    assert off.effective_limits(Limits()).memory is None


def test_bad_limits_in_config_name_the_file_and_key(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"kind": "eval", "tasks": {"path": "t"}, "variants": [{"name": "a", "agent": "nop"}],
                                   "environment": {"limits": {"memory": "lots", "cpus": 0},
                                                   "max_limits": {"output": "-3MiB"}}}))
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    text = str(err.value)
    assert "\n" not in text and str(cfg) in text
    assert "environment.limits.memory: expected a size such as 4GiB or 512MiB, got 'lots'" in text
    assert "environment.limits.cpus: " in text and "environment.max_limits.output: " in text


def test_bad_task_limits_name_the_task(tmp_path: Path) -> None:
    task = write_task(tmp_path, "greedy", test_sh="true\n", toml='version = "1.0"\n[environment]\ncpus = -1\n')
    with pytest.raises(TaskError, match="greedy: task.toml \\[environment\\] cpus must be a positive number"):
        load_harbor_task(task)
    task = write_task(tmp_path, "big", test_sh="true\n", toml='[environment]\nmemory = "lots"\n')
    with pytest.raises(TaskError, match="big: task.toml \\[environment\\] memory: expected a size"):
        load_harbor_task(task)
    ok = write_task(tmp_path, "ok", test_sh="true\n", toml='[environment]\nmemory_mb = 512\nstorage = "2G"\n')
    assert load_harbor_task(ok).limits == Limits(memory=512 * MiB, storage=2 * GiB)


def _job(base: Path, tasks: dict[str, str], limits: dict[str, object]) -> Path:
    dataset = base / "tasks"
    for name, toml in tasks.items():
        write_task(dataset, name, test_sh=HOGGING_TEST if name == "testhogs" else HELLO_TEST,
                   toml=f'version = "1.0"\n{toml}')
    root = base / "block"
    (root / "artifacts").mkdir(parents=True)
    (root / "config.yaml").write_text(yaml.safe_dump({
        "kind": "eval", "tasks": {"path": str(dataset)}, "concurrency": 4,
        "timeouts": {"environment_setup": 30, "agent": 60, "verifier": 30},
        "environment": {"limits": limits},
        "variants": [{"name": "c", "agent": "command", "command": AGENT}]}))
    return root


def _trials(job: Path) -> dict[str, dict]:
    return {p.name: json.loads((p / "trial.json").read_text()) for p in job.iterdir() if (p / "trial.json").exists()}


def _own_cgroups() -> set[str]:
    own = cgroups.own_v2() or cgroups.own_v1("memory") or cgroups.own_v1("pids")
    return {p.name for p in own.iterdir() if p.name.startswith("trialbook-")} if own else set()


@requires_bwrap
@pytest.mark.parametrize("unprivileged", [False, True], ids=["as-root", "as-unprivileged-user"])
def test_runaway_trials_are_stopped_alone(unprivileged: bool) -> None:
    if unprivileged and not running_as_root():
        pytest.fail("this test starts the unprivileged run itself and must run as root (it does in CI)")
    base = shared_tmpdir()
    before = _own_cgroups()
    try:
        root = _job(base, TASKS, {"memory": "512MiB", "pids": 64, "tmp": "16MiB", "output": "1MiB"})
        if unprivileged:
            give(base)
        res = trialbook(["run", "--job", "j", "--json"], cwd=root, unprivileged=unprivileged)
        assert res.returncode == 0, res.stderr[-3000:]
        job = root / "artifacts" / "jobs" / "j"
        trials = _trials(job)
        assert set(trials) == set(TASKS)
        for name in ("calm", "flood", "bigfile"):  # the siblings finished
            assert trials[name]["outcome"] == "resolved", (name, trials[name]["reason"])

        hog = trials["hog"]  # 8 GB under 512 MiB
        assert hog["outcome"] == "agent_error"
        limits = hog["extra"]["limits"]
        assert limits["memory"] == 512 * MiB and limits["pids"] == 64
        if unprivileged:  # no cgroup for a user here: the allocation failed inside the sandbox
            assert limits["enforced_by"] == "rlimit" and "cgroups are not writable" in limits["warning"]
            assert "MemoryError" in (job / "hog" / "agent" / "stderr.txt").read_text()
            assert res.stderr.count("cgroups are not writable") == 1  # one warning per job
        else:
            assert limits["enforced_by"].startswith("cgroup v") and "warning" not in limits
            assert hog["reason"] == "agent: memory limit 512 MiB exceeded"
            assert hog["exception"]["type"] == "ResourceLimitExceeded"
            assert "cgroups are not writable" not in res.stderr
        # 4 x 200 MB in separate processes: the cgroup's OOM killer, or the watchdog's total
        assert trials["hogs"]["outcome"] == "agent_error"
        assert trials["hogs"]["reason"] == "agent: memory limit 512 MiB exceeded"
        assert trials["testhogs"]["outcome"] == "verifier_error"  # the verifier has the same limits
        assert trials["testhogs"]["reason"] == "verifier: memory limit 512 MiB exceeded"
        assert trials["testhogs"]["exception"]["phase"] == "verifier"
        assert trials["forkbomb"]["outcome"] == "agent_error"
        assert trials["forkbomb"]["reason"] == "agent: process limit 64 reached"

        assert not (job / "tmpfill" / "agent").joinpath("tmp-ok").exists()
        assert "No space left on device" in (job / "tmpfill" / "agent" / "stderr.txt").read_text()

        many = trials["manyfiles"]  # task.toml storage_mb = 20 under the default 10 GiB
        assert many["outcome"] == "agent_error" and many["extra"]["limits"]["storage"] == 20 * MiB
        assert many["reason"].startswith("agent: storage limit 20 MiB exceeded")
        # one file cannot outgrow the storage limit (storage = "40M", RLIMIT_FSIZE)
        assert f"big: {40 * MiB}" in (job / "bigfile" / "agent" / "stderr.txt").read_text()

        stdout = (job / "flood" / "agent" / "stdout.txt").read_bytes()  # output: 1MiB
        assert len(stdout) < MiB + 200 and stdout.endswith(f"{30_000_000 - MiB} more bytes dropped]\n".encode())
        notes = trials["flood"]["extra"]["sandbox_notes"]
        assert any("stdout.txt: output limit 1 MiB reached" in n for n in notes)
        assert _own_cgroups() == before  # every cgroup of the job was removed
    finally:
        remove(base)


@requires_bwrap
def test_root_without_writable_cgroups_falls_back(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """As root on a machine whose cgroupfs cannot be written: rlimits and the watchdog contain memory."""
    from trialbook.app.pipeline import run_block

    monkeypatch.setattr(cgroups, "available_mode", lambda: "none")
    root = _job(tmp_path, {"hog": "", "hogs": "", "calm": ""}, {"memory": "512MiB", "pids": 64})
    out = run_block(root / "config.yaml", "j").outcome
    trials = _trials(out.job_dir)
    assert trials["calm"]["outcome"] == "resolved"
    assert trials["hog"]["outcome"] == "agent_error"
    assert "MemoryError" in (out.job_dir / "hog" / "agent" / "stderr.txt").read_text()
    assert trials["hogs"]["reason"] == "agent: memory limit 512 MiB exceeded"
    limits = trials["hogs"]["extra"]["limits"]
    assert limits["enforced_by"] == "rlimit"
    expected_gaps = "pids (watched only)" if running_as_root() else ""
    assert expected_gaps in limits["warning"]


def test_disk_usage_counts_blocks_once_and_opens_hidden_dirs(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 100_000)
    os.link(tmp_path / "a", tmp_path / "hard")  # counted once
    (tmp_path / "link").symlink_to("/usr")  # not followed
    with open(tmp_path / "sparse", "wb") as fh:  # a huge size, no blocks
        fh.truncate(10 * GiB)
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "b").write_bytes(b"y" * 200_000)
    hidden.chmod(0)
    try:
        used, entries = disk_usage(tmp_path)
    finally:
        hidden.chmod(0o755)
    assert 300_000 <= used < 1_000_000 and entries == 6
    if running_as_root():  # root reads any directory; as the owner the count opens it up
        from unprivileged import UNPRIVILEGED_UID, _check_launcher, unprivileged_env

        base = shared_tmpdir()
        try:
            code = ("import os, pathlib, sys; from trialbook.run.environments.guard import disk_usage\n"
                    "d = pathlib.Path(sys.argv[1], 'tree', 'hidden'); d.mkdir(parents=True)\n"
                    "(d / 'b').write_bytes(b'y' * 300000); d.chmod(0)\n"
                    "print(disk_usage(d.parent)[0])")
            res = subprocess.run([*_check_launcher(), "-c", code, str(base)], capture_output=True, text=True,
                                 env=unprivileged_env(), timeout=60)
            assert res.returncode == 0, res.stderr
            assert int(res.stdout) >= 300_000
            assert (base / "tree" / "hidden").stat().st_uid == UNPRIVILEGED_UID
        finally:
            remove(base)


def test_pipe_reader_keeps_the_cap_and_counts_the_rest() -> None:
    proc = subprocess.Popen(["sh", "-c", "yes | head -c 5000000"], stdout=subprocess.PIPE)
    reader = PipeReader(proc.stdout, MiB)  # type: ignore[arg-type]
    proc.wait(timeout=30)
    kept, dropped = reader.result()
    assert len(kept) == MiB and dropped == 5_000_000 - MiB and kept.startswith(b"y\ny\n")


@requires_bwrap
def test_default_output_limit_keeps_50_mib(tmp_path: Path) -> None:
    from trialbook.app.pipeline import run_block

    root = make_block(tmp_path, tasks=["hello-world"], variants=[
        {"name": "loud", "agent": "command", "command": "head -c 60000000 /dev/zero | tr '\\0' x"}])
    out = run_block(root / "config.yaml", "j").outcome
    stdout = out.job_dir / "hello-world" / "agent" / "stdout.txt"
    size = stdout.stat().st_size
    with open(stdout, "rb") as fh:
        fh.seek(50 * MiB - 10)
        tail = fh.read()
    assert 50 * MiB < size < 50 * MiB + 200 and tail.startswith(b"x" * 10)
    assert tail.endswith(f"{60_000_000 - 50 * MiB} more bytes dropped]\n".encode())


@requires_bwrap
def test_old_bubblewrap_gets_a_per_trial_tmp_counted_as_storage(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    """A bubblewrap without ``--size`` (before 0.5): /tmp is a directory of the trial, under its storage limit."""
    from trialbook.app.pipeline import run_block
    from trialbook.run.environments import local, local_env

    monkeypatch.setattr(local, "bwrap_sizes_tmpfs", lambda: False)
    monkeypatch.setattr(local_env, "bwrap_sizes_tmpfs", lambda: False)
    root = _job(tmp_path, {"tmpfill": ""}, {"tmp": "16MiB", "storage": "20MiB"})
    config = yaml.safe_load((root / "config.yaml").read_text())
    config["variants"][0]["command"] = ("head -c 100000000 /dev/zero > /tmp/fill; stat -c 'size %s' /tmp/fill >&2; "
                                        "touch /tmp/kept; echo hi > /app/hello.txt")
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    out = run_block(root / "config.yaml", "j").outcome
    assert f"size {20 * MiB}" in (out.job_dir / "tmpfill" / "agent" / "stderr.txt").read_text()  # RLIMIT_FSIZE
    assert _trials(out.job_dir)["tmpfill"]["outcome"] == "resolved"
