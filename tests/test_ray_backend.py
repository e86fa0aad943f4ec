"""execution.backend ray on a real two-node local Ray cluster (``ray start --head`` + a worker node,
each its own process group): same results as the local backend, Ctrl-C and resume, a node killed
mid-job. The cluster is started once for the module (tests/ray_cluster.py)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import make_block, requires_bwrap, write_task
from job_compare import job_differences
from ray_cluster import LocalRayCluster
from s3_server import S3Env, s3_env_fixture, s3_server_fixture  # noqa: F401

from trialbook.app.pipeline import run_block
from trialbook.config import parse_config
from trialbook.errors import ConfigError
from trialbook.jsonio import read_json
from trialbook.run.agents.base import get_agent
from trialbook.run.backends.ray_backend import JobDirNotShared, _trial_in_worker
from trialbook.run.scheduler import prepare_job
from trialbook.run.trial import TrialEnv

pytestmark = requires_bwrap

EXAMPLES = ["broken-verifier", "count-words", "fix-the-bug", "hello-world", "make-script"]
BOTH = [{"name": "oracle", "agent": "oracle"}, {"name": "nop", "agent": "nop"}]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    """A head and a worker node of 1 CPU each; the worker does not see ``c.hidden`` (its own mount namespace)."""
    c = LocalRayCluster(tmp_path_factory.mktemp("ray-logs"))
    c.hidden = tmp_path_factory.mktemp("not-shared")
    try:
        c.start(workers=1, hide=c.hidden)
        yield c
    finally:
        c.stop()


def trials(job_dir: Path) -> dict[str, dict]:
    return {p.parent.name: read_json(p) for p in sorted(job_dir.glob("*/trial.json"))}


def _ray(cluster: LocalRayCluster, **kw: object) -> dict:
    return {"backend": "ray", "address": cluster.address, **kw}


def test_the_node_that_does_not_see_it_is_real(cluster: LocalRayCluster) -> None:
    """The check above fails for the right reason: that node's mount namespace hides the directory."""
    (cluster.hidden / "marker").write_text("x")
    assert cluster.hidden is not None
    pid = cluster.workers[0].pid  # sh exec'd `ray start` inside the namespace
    assert not Path(f"/proc/{pid}/root{cluster.hidden}/marker").exists()
    assert cluster.head is not None and Path(f"/proc/{cluster.head.pid}/root{cluster.hidden}/marker").exists()


def _slow_block(tmp_path: Path, n: int, sleep: float, **kw: object) -> Path:
    extra = tmp_path / "extra"
    for i in range(n):
        write_task(extra, f"t{i:02d}", test_sh="test -f /app/done && echo 1 > /logs/verifier/reward.txt "
                                               "|| echo 0 > /logs/verifier/reward.txt\n",
                   solve_sh=f"#!/usr/bin/env bash\nsleep {sleep}\ntouch /app/done\n")
    return make_block(tmp_path, extra_tasks_dir=extra, concurrency=2, **kw)


def _runner(root: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "trialbook.cli.main", "run", "-c", str(root / "config.yaml"),
                             "--job", "j"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _wait_for(job: Path, finished: int, running: int, timeout: float = 120) -> None:
    """Until at least ``finished`` trials are finished and ``running`` are under way."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = []
        for p in job.glob("*/trial.json"):
            try:
                states.append(json.loads(p.read_text()).get("status"))
            except (OSError, ValueError):
                continue
        if states.count("finished") >= finished and states.count("running") >= running:
            return
        time.sleep(0.05)
    raise AssertionError(f"the job made no progress in {timeout:g}s")


# -- without a cluster -------------------------------------------------------------------------

def test_execution_settings_are_validated(tmp_path: Path) -> None:
    base = {"kind": "eval", "tasks": {"path": "tasks"}, "variants": [{"name": "a", "agent": "nop"}]}
    assert parse_config(base, tmp_path / "config.yaml").execution.backend == "local"
    for bad, expected in [({"backend": "dask"}, "execution.backend"),
                          ({"backend": "ray", "address": "ray://nowhere"}, "is not a Ray address"),
                          ({"max_retries": -1}, "execution.max_retries"),
                          ({"nodes": 3}, "execution.nodes")]:
        with pytest.raises(ConfigError) as err:
            parse_config({**base, "execution": bad}, tmp_path / "config.yaml")
        assert expected in str(err.value) and "\n" not in str(err.value).strip()


def test_without_ray_the_ray_backend_is_one_clear_line_and_local_never_imports_it(tmp_path: Path) -> None:
    root = make_block(tmp_path, tasks=["hello-world"], execution={"backend": "ray"})
    hide_ray = "import sys; sys.modules['ray'] = None; sys.argv = sys.argv[1:]; from trialbook.cli.main import main; main()"
    res = subprocess.run([sys.executable, "-c", hide_ray, "trialbook", "run", "-c", str(root / "config.yaml")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        f"error: {root / 'config.yaml'}: execution.backend is ray but Ray is not installed; install it with "
        "pip install 'trialbook[ray]'"]
    assert not (root / "artifacts" / "jobs").exists() or not any((root / "artifacts" / "jobs").glob("*/*/trial.json"))
    local = subprocess.run([sys.executable, "-c", "import sys, trialbook.app.pipeline, trialbook.run.scheduler; "
                            "print('ray' in sys.modules)"], capture_output=True, text=True, timeout=120)
    assert local.stdout.strip() == "False", local.stderr


def test_a_trial_on_a_node_that_does_not_see_the_job_refuses_to_start(tmp_path: Path) -> None:
    """The check each trial task makes before it writes anything (a node may join after the job's start)."""
    root = make_block(tmp_path, tasks=["hello-world"], execution={"backend": "ray"})
    setup = prepare_job(root / "config.yaml", "j")
    env = TrialEnv(job_name="j", job=setup.job, config=setup.config, scratch_root=setup.block.scratch,
                   agents={"oracle": get_agent("oracle")})
    setup.job.dir.mkdir(parents=True, exist_ok=True)
    setup.job.execution_probe.write_text("the token of another job's driver\n")
    with pytest.raises(JobDirNotShared) as err:
        _trial_in_worker(env, setup.plans[0], 0, "this job's token", [], {}, [])
    assert f"the job directory {setup.job.dir} is not visible on Ray node " in str(err.value)
    assert not (setup.job.dir / "hello-world").exists()


# -- on the cluster ---------------------------------------------------------------------------

def test_ray_job_gives_the_local_backends_results_byte_for_byte(cluster: LocalRayCluster, tmp_path: Path) -> None:
    common = {"tasks": EXAMPLES, "variants": BOTH, "attempts": 2}
    local = run_block(make_block(tmp_path / "local", **common) / "config.yaml", "j").outcome
    ray_root = make_block(tmp_path / "ray", **common, execution=_ray(cluster))
    remote = run_block(ray_root / "config.yaml", "j").outcome
    assert remote.status == "completed" and remote.aggregate["n_trials"] == 20
    assert remote.aggregate["outcomes"] == {"resolved": 8, "unresolved": 8, "verifier_error": 4}
    assert job_differences(local.job_dir, remote.job_dir) == []
    a, b = trials(local.job_dir), trials(remote.job_dir)
    assert {n: r["outcome"] for n, r in a.items()} == {n: r["outcome"] for n, r in b.items()}
    assert all(r["extra"]["execution"]["backend"] == "ray" and r["retries"] == 0 for r in b.values())
    assert len({r["extra"]["execution"]["node"] for r in b.values()}) == 2  # both nodes ran trials
    assert "execution" not in next(iter(a.values()))["extra"]
    assert (remote.job_dir / "fix-the-bug__oracle__2" / "evaluation" / "verdict.json").is_file()
    assert not (remote.job_dir / ".execution-probe").exists()
    # The differences the helper removes are real: a changed outcome is caught.
    results = read_json(remote.job_dir / "results.json")
    results["variants"]["nop"]["n_success"] = 1
    (remote.job_dir / "results.json").write_text(json.dumps(results, indent=2))
    assert [d.split(":")[0] for d in job_differences(local.job_dir, remote.job_dir)] == ["results.json"]


def test_a_ray_jobs_trials_and_files_land_in_the_artifact_store(cluster: LocalRayCluster, s3_env: S3Env,
                                                               tmp_path: Path) -> None:
    """Ray and an S3 store together: trials run on the cluster's nodes, the driver uploads each as it
    comes back (the store's per-trial hook), then the job's own files."""
    bucket = s3_env.new_bucket()
    root = make_block(tmp_path, tasks=["hello-world", "count-words"], variants=BOTH, execution=_ray(cluster),
                      artifacts={"store": f"s3://{bucket}/runs"})
    report = run_block(root / "config.yaml", "j")
    assert report.outcome.status == "completed" and "store" not in report.step_errors, report.step_errors
    keys = {k.split(f"{bucket}/runs/j/", 1)[1] for k in s3_env.objects(f"{bucket}/runs/j")}
    local = trials(report.outcome.job_dir)
    assert len(local) == 4 and all(r["extra"]["execution"]["backend"] == "ray" for r in local.values())
    for name in local:
        assert {f"{name}/trial.json", f"{name}/.trialbook-manifest.json"} <= keys, sorted(keys)
    assert "results.json" in keys
    stored = s3_env.fs().cat_file(f"{bucket}/runs/j/results.json")
    assert stored == (report.outcome.job_dir / "results.json").read_bytes()


def test_a_trial_no_node_can_hold_fails_the_job_before_it_starts(cluster: LocalRayCluster, tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    write_task(extra, "big", test_sh="echo 1 > /logs/verifier/reward.txt\n",
               toml='version = "1.0"\n[environment]\ncpus = 4\n')
    root = make_block(tmp_path, extra_tasks_dir=extra, execution=_ray(cluster))
    with pytest.raises(ConfigError) as err:
        run_block(root / "config.yaml", "j")
    assert "task big: a trial asks for 4 CPUs" in str(err.value)
    assert "which no node of the Ray cluster has (the largest: 1 CPUs" in str(err.value)
    assert not list((root / "artifacts" / "jobs" / "j").glob("*/trial.json"))


def test_a_node_that_does_not_see_the_job_directory_fails_the_job_clearly(cluster: LocalRayCluster) -> None:
    assert cluster.hidden is not None
    root = make_block(cluster.hidden, tasks=["hello-world"], execution=_ray(cluster))
    with pytest.raises(JobDirNotShared) as err:
        run_block(root / "config.yaml", "j")
    job = root / "artifacts" / "jobs" / "j"
    assert str(err.value) == (
        f"1 of 2 Ray nodes cannot run this job's trials: the job directory {job} is not visible on Ray node "
        f"{err.value.message.split('is not visible on Ray node ')[1].split(':')[0]}: the ray backend writes "
        "each trial there, through a filesystem every node mounts at the same path")
    assert not list(job.glob("*/trial.json")) and not (job / ".execution-probe").exists()


def test_ctrl_c_cancels_remote_trials_and_a_resume_completes_them(cluster: LocalRayCluster, tmp_path: Path) -> None:
    root = _slow_block(tmp_path, 6, 1, execution=_ray(cluster))
    job = root / "artifacts" / "jobs" / "j"
    proc = _runner(root)
    _wait_for(job, finished=2, running=2)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err.decode()
    t = trials(job)
    assert all(r["status"] == "finished" for r in t.values())
    cancelled = sorted(n for n, r in t.items() if r["outcome"] == "cancelled")
    done = {n: (job / n / "trial.json").read_bytes() for n, r in t.items() if r["outcome"] == "resolved"}
    assert len(cancelled) >= 1 and len(done) >= 2 and len(cancelled) + len(done) == len(t)
    assert read_json(job / "results.json")["status"] == "cancelled"
    message = " ".join(err.decode().split())
    assert f"job j interrupted: {len(done)} of 6 trials finished; {len(cancelled)} cancelled" in message, message

    again = run_block(root / "config.yaml", "j").outcome
    assert again.status == "completed" and again.resumed and again.n_skipped == len(done)
    t = trials(job)
    assert len(t) == 6 and all(r["outcome"] == "resolved" for r in t.values())
    assert {n: (job / n / "trial.json").read_bytes() for n in done} == done  # finished ones not run again
    assert all(t[n]["extra"]["execution"]["backend"] == "ray" for n in cancelled)


def test_a_worker_node_killed_mid_job_loses_no_trial(cluster: LocalRayCluster, tmp_path: Path) -> None:
    """Last in the module: it kills the cluster's worker node (kill -9 of its whole process group)."""
    root = _slow_block(tmp_path, 4, 1.5, execution=_ray(cluster))
    job = root / "artifacts" / "jobs" / "j"
    proc = _runner(root)
    _wait_for(job, finished=0, running=2)  # one trial on each node (1 CPU each)
    cluster.kill_worker(0)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err.decode()
    t = trials(job)
    assert len(t) == 4 and all(r["status"] == "finished" and r["outcome"] == "resolved" for r in t.values())
    lost = {n: r for n, r in t.items() if r["retries"]}
    assert len(lost) >= 1
    for r in lost.values():
        assert r["retries"] == len(r["extra"]["execution"]["lost"])
        assert re.match(r"(NodeDiedError|WorkerCrashedError): ", r["extra"]["execution"]["lost"][0])
    assert all("lost" not in r["extra"]["execution"] for n, r in t.items() if n not in lost)
    assert read_json(job / "results.json")["outcomes"] == {"resolved": 4}
    log = (root / "logs" / "session-j.log").read_text()
    for name in t:  # each trial finished exactly once
        assert len(re.findall(rf"trial {name} finished: ", log)) == 1, name
    status = yaml.safe_load((root / "config.yaml").read_text())["status"]
    assert (status["state"], status["done"], status["total"]) == ("completed", 4, 4)
