"""The job monitor: numbers of the report, stall detection, and ``trialbook monitor`` on a live job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import requires_bwrap, write_task

from trialbook.app.pipeline import run_block
from trialbook.errors import JobLockedError
from trialbook.jsonio import write_json
from trialbook.layout.paths import BlockPaths, JobPaths
from trialbook.model.trial import TrialRecord
from trialbook.run.job import JobLock
from trialbook.run.monitor import FinishedTrial, Monitor, build_snapshot, render_markdown


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


def test_snapshot_numbers() -> None:
    now = float(int(time.time()))
    finished = [FinishedTrial(f"t{i}", "resolved", float(i), None) for i in range(8)]
    finished += [FinishedTrial("x1", "timeout", 50.0, "AgentTimeoutError"),
                 FinishedTrial("x2", "agent_error", 2.0, "NonZeroAgentExitCodeError"),
                 FinishedTrial("x3", "timeout", 40.0, "AgentTimeoutError")]
    snap = build_snapshot(job="j", job_dir=Path("/b/j"), state="running", total=44, done=11 + 11,
                          skipped=11, finished=finished, started_at=iso(now - 120), now=now,
                          running=[], stall_after_s=300, pid=1)
    assert snap["throughput_per_min"] == pytest.approx(5.5)  # 11 trials of this run in 2 minutes
    assert snap["eta_s"] == pytest.approx(22 / 5.5 * 60, abs=0.1)
    assert snap["percent"] == 50.0 and snap["remaining"] == 22
    assert snap["errors_by_type"] == {"AgentTimeoutError": 2, "NonZeroAgentExitCodeError": 1}
    assert list(snap["errors_by_type"]) == ["AgentTimeoutError", "NonZeroAgentExitCodeError"]
    assert [s["trial"] for s in snap["slowest"]] == ["x1", "x3", "t7", "t6", "t5"]
    md = render_markdown(snap)
    assert "| progress | 22 / 44 (50%) |" in md and "| throughput | 5.50 trials/min |" in md
    assert "| AgentTimeoutError | 2 |" in md and "| x1 | 50s | timeout |" in md
    done = build_snapshot(job="j", job_dir=Path("/b/j"), state="completed", total=44, done=44,
                          skipped=11, finished=finished, started_at=iso(now - 120), now=now,
                          running=[], stall_after_s=300, pid=1)
    assert done["eta_s"] is None and "| ETA | — |" in render_markdown(done)


def _trial(job: JobPaths, name: str, started_at: str, *, output_age_s: float | None,
           status: str = "running") -> None:
    paths = job.trial(name)
    paths.agent_dir.mkdir(parents=True)
    rec = TrialRecord(trial_name=name, job=job.name, task=name, variant="v", agent="command", attempt=1,
                      started_at=started_at, status=status)
    write_json(paths.trial_json, rec.to_json_dict())
    if output_age_s is not None:
        paths.agent_stdout.write_text("working...\n")
        t = time.time() - output_age_s
        os.utime(paths.agent_stdout, (t, t))
    past = time.time() - 1000
    os.utime(paths.agent_dir, (past, past))


def test_stalled_trials_are_flagged(tmp_path: Path) -> None:
    block = BlockPaths(tmp_path)
    job = block.job("j")
    names = ["quiet", "busy", "leftover", "waiting"]
    mon = Monitor(block, job, names, stall_after_s=30)
    mon.started_at = iso(time.time() - 300)  # the run began 5 minutes ago
    began = iso(time.time() - 200)
    _trial(job, "quiet", began, output_age_s=100)  # output, then silence for 100 s
    _trial(job, "busy", began, output_age_s=1)
    _trial(job, "leftover", "2020-01-01T00:00:00.000Z", output_age_s=500)  # from a crashed run
    with mon:
        mon.on_progress(0, 4, None)
        snap = mon.write()
        md = (tmp_path / "logs" / "monitor.md").read_text()
    running = {r["trial"]: r for r in snap["running"]}
    assert sorted(running) == ["busy", "quiet"] and running["busy"]["running_s"] == pytest.approx(200, abs=5)
    assert [r["trial"] for r in snap["stalled"]] == ["quiet"]
    assert running["quiet"]["idle_s"] == pytest.approx(100, abs=5)
    assert "## No progress for more than 30s" in md and "| quiet | 1m 40s |" in md
    final = json.loads((tmp_path / "logs" / "monitor.json").read_text())
    assert final["state"] == "completed" and final["running"] == []  # __exit__ wrote the end state



def tb(*args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "trialbook.cli.main", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd)


@requires_bwrap
def test_live_monitor_of_a_running_job(block_factory, tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    for i in range(3):
        write_task(extra, f"t{i}", test_sh="echo 1 > /logs/verifier/reward.txt\n")
    root = block_factory(extra_tasks_dir=extra, concurrency=3, monitor={"stall_after_s": 1},
                         variants=[{"name": "slow", "agent": "command", "command": "echo start; sleep 4"}])
    runner = tb("run", "--json", "--job", "j", cwd=root)
    state = root / "logs" / "monitor.json"
    deadline = time.monotonic() + 30
    while not state.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    follower = tb("monitor", "--follow", "--json", "--interval", "0.2", cwd=root)
    stalled: set[str] = set()
    while runner.poll() is None and time.monotonic() < deadline:
        try:
            snap = json.loads(state.read_text())
        except (ValueError, FileNotFoundError):
            continue
        stalled |= {s["trial"] for s in snap["stalled"]}
        time.sleep(0.1)
    assert runner.wait(timeout=30) == 0, runner.stderr.read() if runner.stderr else ""
    assert stalled == {"t0", "t1", "t2"}  # silent for > 1 s after "start"
    out, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) >= 2 and lines[0]["job"] == "j"
    assert lines[-1]["state"] == "completed" and lines[-1]["done"] == 3
    md = (root / "logs" / "monitor.md").read_text()
    assert "| progress | 3 / 3 (100%) |" in md
    human = subprocess.run([sys.executable, "-m", "trialbook.cli.main", "monitor", "--block", str(root)],
                           capture_output=True, text=True)
    assert human.returncode == 0 and human.stdout.startswith("job j  completed\n[####################] 3/3 100%")
    assert "outcomes: resolved=3" in human.stdout
    # no run in progress: --follow waits for the next one instead of exiting
    waiting = subprocess.Popen([sys.executable, "-m", "trialbook.cli.main", "monitor", "--follow"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=root)
    time.sleep(3)
    assert waiting.poll() is None
    waiting.kill()
    assert "waiting for one to start" in waiting.communicate()[1]


def test_runner_refused_by_the_job_lock_leaves_the_live_report_alone(block_factory) -> None:
    root = block_factory(tasks=["hello-world"])
    job_lock = root / "artifacts" / "jobs" / "j" / ".lock"
    live = root / "logs" / "monitor.json"
    live.parent.mkdir()
    live.write_text('{"job": "j", "state": "running", "pid": 1}')
    with JobLock(job_lock), pytest.raises(JobLockedError):
        run_block(root / "config.yaml", "j")
    assert live.read_text() == '{"job": "j", "state": "running", "pid": 1}'
    assert not (root / "logs" / "monitor.md").exists()


def test_monitor_without_report_is_a_clear_error(tmp_path: Path) -> None:
    from trialbook.block.init import init_block

    init_block(tmp_path / "b", "eval")
    res = subprocess.run([sys.executable, "-m", "trialbook.cli.main", "monitor"], capture_output=True,
                         text=True, cwd=tmp_path / "b")
    assert res.returncode == 3 and "no monitor report" in res.stderr  # 3: not found


def test_compact_view_fits_one_terminal_screen() -> None:
    from trialbook.cli.monitor_view import compact_lines

    running = [{"trial": f"task-with-a-rather-long-name-{i:03d}__variant__1", "running_s": 100.0 + i,
                "idle_s": 5.0, "stalled": i < 3} for i in range(40)]
    snap = {"job": "big", "state": "completed", "total": 400, "done": 120, "percent": 30.0,
            "elapsed_s": 600.0, "eta_s": 1400.0, "throughput_per_min": 12.0, "outcomes": {"resolved": 100,
            "unresolved": 15, "agent_error": 5}, "errors_by_type": {f"Error{i}": i + 1 for i in range(6)},
            "running": running, "stalled": running[:3], "stall_after_s": 300.0,
            "slowest": [{"trial": "t", "duration_s": 9.0, "outcome": "resolved"}] * 5}
    lines = [text for text, _ in compact_lines(snap, width=80, height=24)]
    assert len(lines) <= 24 and max(len(line) for line in lines) <= 80
    assert lines[0] == "job big  completed" and lines[2].startswith("outcomes: resolved=100")
    assert lines[3].startswith("errors: ") and lines[3].endswith("(+2 more)")
    assert lines[4].startswith("stalled") and lines[5].startswith("  task-with-a-rather-long-name-000")
    assert any("more (see logs/monitor.md)" in line for line in lines)


@requires_bwrap
def test_monitor_for_a_named_job_and_follow_before_the_run(block_factory) -> None:
    root = block_factory(tasks=["hello-world"])
    follower = subprocess.Popen([sys.executable, "-m", "trialbook.cli.main", "monitor", "-f", "--json",
                                 "--interval", "0.1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd=root)
    time.sleep(1.5)  # the follower is waiting before the run starts
    assert subprocess.run([sys.executable, "-m", "trialbook.cli.main", "run", "--job", "first"],
                          cwd=root, capture_output=True).returncode == 0
    out, err = follower.communicate(timeout=60)
    assert follower.returncode == 0, err
    assert json.loads(out.splitlines()[-1])["job"] == "first"
    assert subprocess.run([sys.executable, "-m", "trialbook.cli.main", "run", "--job", "second"],
                          cwd=root, capture_output=True).returncode == 0
    named = subprocess.run([sys.executable, "-m", "trialbook.cli.main", "monitor", "--job", "first", "--json"],
                           cwd=root, capture_output=True, text=True)
    snap = json.loads(named.stdout)
    assert (snap["job"], snap["state"], snap["done"], snap["total"]) == ("first", "completed", 1, 1)
