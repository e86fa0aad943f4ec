"""End-to-end jobs in the real bubblewrap sandbox: files, numbers, and bad input."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import requires_bwrap, write_task

from trialbook.app.pipeline import run_block
from trialbook.errors import JobConfigChangedError, JobLockedError
from trialbook.jsonio import read_json
from trialbook.run.job import JobLock
from trialbook.run.scheduler import prepare_job, run_job

pytestmark = requires_bwrap

EXAMPLES = ["broken-verifier", "count-words", "fix-the-bug", "hello-world", "make-script"]


def trials(job_dir: Path) -> dict[str, dict]:
    return {p.name: read_json(p / "trial.json") for p in sorted(job_dir.iterdir())
            if (p / "trial.json").exists()}


def test_demo_job_numbers_match_hand_check(block_factory) -> None:
    root = block_factory(tasks=EXAMPLES, variants=[{"name": "oracle", "agent": "oracle"},
                                                   {"name": "nop", "agent": "nop"}], attempts=3)
    out = run_block(root / "config.yaml", "demo").outcome
    job = out.job_dir
    agg = read_json(job / "results.json")
    assert agg["status"] == "completed" and agg["n_trials"] == 30 == agg["n_trials_planned"]
    # oracle solves 4 tasks x 3 attempts; broken-verifier gives verifier_error for both variants
    assert agg["outcomes"] == {"resolved": 12, "unresolved": 12, "verifier_error": 6}
    o, n = agg["variants"]["oracle"], agg["variants"]["nop"]
    assert (o["n_trials"], o["n_success"], o["n_errors"], o["n_tasks"]) == (15, 12, 3, 5)
    assert o["success_rate"] == pytest.approx(0.8)
    assert o["pass_at_k"] == {"1": pytest.approx(0.8), "2": pytest.approx(0.8), "3": pytest.approx(0.8)}
    assert o["mean_reward"] == pytest.approx(1.0)  # the 3 verifier errors have no reward
    assert n["success_rate"] == 0 and n["pass_at_k"]["3"] == 0
    assert n["mean_rewards"]["tests_passed"] == pytest.approx(0.25)  # 1 of 4 checks passes unfixed
    t = trials(job)
    assert len(t) == 30 and all(r["status"] == "finished" for r in t.values())
    bv = t["broken-verifier__oracle__2"]
    assert bv["outcome"] == "verifier_error" and "neither reward.json nor reward.txt" in bv["reason"]
    hw = t["hello-world__oracle__1"]
    assert (hw["task"], hw["variant"], hw["attempt"], hw["outcome"]) == ("hello-world", "oracle", 1, "resolved")
    assert set(hw["timings"]) == {"environment_setup", "agent", "verifier"}
    d = job / "fix-the-bug__oracle__3"
    assert read_json(d / "evaluation" / "verdict.json")["source"] == "reward.json"
    assert "total(10) = 55" in (d / "evaluation" / "test_output.txt").read_text()
    assert (d / "agent" / "stdout.txt").exists() and (d / "agent" / "stderr.txt").exists()
    snap = yaml.safe_load((job / "config.yaml").read_text())
    assert snap["attempts"] == 3 and "status" not in snap
    status = yaml.safe_load((root / "config.yaml").read_text())["status"]
    assert status["state"] == "completed" and status["done"] == status["total"] == 30


def test_single_variant_single_attempt_uses_task_dir_names(block_factory) -> None:
    root = block_factory(tasks=["hello-world", "count-words"])
    out = run_block(root / "config.yaml", "j").outcome
    assert sorted(trials(out.job_dir)) == ["count-words", "hello-world"]


def test_bad_rewards_and_hanging_verifier(block_factory, tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    write_task(extra, "garbage", test_sh="echo 'not a number' > /logs/verifier/reward.txt\n")
    write_task(extra, "empty", test_sh=": > /logs/verifier/reward.txt\n")
    write_task(extra, "badjson", test_sh="echo '{\"reward\": \"high\"}' > /logs/verifier/reward.json\n")
    marker = f"{300 + secrets.randbelow(10**6) / 10**6:.6f}"  # unique: other test runs may share the machine
    write_task(extra, "hangs", test_sh=f"sleep {marker} &\nsleep {marker}\n",
               toml='[verifier]\ntimeout_sec = 2\n')
    root = block_factory(extra_tasks_dir=extra)
    t0 = time.monotonic()
    out = run_block(root / "config.yaml", "j").outcome
    assert time.monotonic() - t0 < 30
    t = trials(out.job_dir)
    assert t["garbage"]["outcome"] == "verifier_error" and "does not hold a number" in t["garbage"]["reason"]
    assert t["empty"]["outcome"] == "verifier_error" and "empty" in t["empty"]["reason"]
    assert t["badjson"]["outcome"] == "verifier_error" and "expected a number" in t["badjson"]["reason"]
    assert t["hangs"]["outcome"] == "timeout" and t["hangs"]["exception"]["type"] == "VerifierTimeoutError"
    # the whole process tree died: no sleep 300 left behind
    ps = subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True, text=True)
    assert ps.stdout.strip() == ""


def test_command_agent_sandbox_instruction_and_isolation(block_factory, tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    secret = tmp_path / "host-secret.txt"
    secret.write_text("host data")
    write_task(
        extra, "probe", instruction="Write the magic word.",
        test_sh="""\
            grep -q 'Write the magic word.' /app/from_env.txt && cmp -s /app/from_env.txt /app/from_file.txt \\
              && grep -q readonly /app/ro.txt && grep -q nonet /app/net.txt && grep -q nohost /app/host.txt \\
              && echo 1 > /logs/verifier/reward.txt || echo 0 > /logs/verifier/reward.txt
            """,
    )
    cmd = (
        'printf "%s" "$TRIALBOOK_INSTRUCTION" > /app/from_env.txt; cat "$TRIALBOOK_INSTRUCTION_FILE" > /app/from_file.txt; '
        '(touch /usr/x 2>/dev/null && echo writable || echo readonly) > /app/ro.txt; '
        '(python3 -c "import socket; socket.create_connection((\\"1.1.1.1\\", 53), timeout=2)" 2>/dev/null && echo net || echo nonet) > /app/net.txt; '
        f'(test -e {secret} && echo host || echo nohost) > /app/host.txt; echo agent-says-hi; echo oops >&2'
    )
    root = block_factory(extra_tasks_dir=extra, variants=[{"name": "cmd", "agent": "command", "command": cmd}])
    out = run_block(root / "config.yaml", "j").outcome
    t = trials(out.job_dir)["probe"]
    assert t["outcome"] == "resolved", (out.job_dir / "probe" / "agent" / "stderr.txt").read_text()
    assert "agent-says-hi" in (out.job_dir / "probe" / "agent" / "stdout.txt").read_text()
    assert "oops" in (out.job_dir / "probe" / "agent" / "stderr.txt").read_text()


def test_agent_timeout_kills_tree_and_nonzero_exit_is_agent_error(block_factory, tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    write_task(extra, "slow", test_sh="echo 1 > /logs/verifier/reward.txt\n", toml="[agent]\ntimeout_sec = 1.5\n")
    marker = f"{301 + secrets.randbelow(10**6) / 10**6:.6f}"
    root = block_factory(extra_tasks_dir=extra, variants=[
        {"name": "sleeper", "agent": "command", "command": f"setsid sleep {marker} & sleep {marker}"},
        {"name": "crasher", "agent": "command", "command": "exit 7"},
    ])
    out = run_block(root / "config.yaml", "j").outcome
    t = trials(out.job_dir)
    s = t["slow__sleeper__1"]
    assert s["outcome"] == "timeout" and s["exception"]["type"] == "AgentTimeoutError"
    assert "verifier" not in s["timings"]
    assert subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True).stdout == b""
    c = t["slow__crasher__1"]
    # the verifier here always passes, so a crashed agent with a passing verdict stays resolved
    assert c["outcome"] == "resolved" and c["extra"]["agent_exit_code"] == 7


def test_nonzero_exit_with_unresolved_verdict_is_agent_error(block_factory) -> None:
    root = block_factory(tasks=["hello-world"], variants=[{"name": "c", "agent": "command", "command": "exit 3"}])
    t = trials(run_block(root / "config.yaml", "j").outcome.job_dir)["hello-world"]
    assert t["outcome"] == "agent_error" and t["exception"]["type"] == "NonZeroAgentExitCodeError"


def test_lock_resume_and_changed_config(block_factory) -> None:
    root = block_factory(tasks=["hello-world", "count-words"], attempts=2)
    cfg = root / "config.yaml"
    setup = prepare_job(cfg, "j")
    with JobLock(setup.job.lock), pytest.raises(JobLockedError, match="another trialbook process"):
        run_job(prepare_job(cfg, "j"))
    first = run_job(prepare_job(cfg, "j"))
    assert first.resumed is False and len(first.records) == 4
    mtimes = {p: p.stat().st_mtime_ns for p in first.job_dir.glob("*/trial.json")}
    # drop one finished trial: resume runs only that one
    victim = first.job_dir / "count-words__oracle__2"
    import shutil
    shutil.rmtree(victim)
    second = run_job(prepare_job(cfg, "j"))
    assert second.resumed and second.n_skipped == 3 and len(second.records) == 4
    for p, m in mtimes.items():
        if victim not in p.parents:
            assert p.stat().st_mtime_ns == m
    # concurrency may change; attempts may not
    data = yaml.safe_load(cfg.read_text())
    data["concurrency"] = 1
    cfg.write_text(yaml.safe_dump(data))
    run_job(prepare_job(cfg, "j"))
    data["attempts"] = 3
    data["variants"][0]["agent"] = "nop"
    cfg.write_text(yaml.safe_dump(data))
    with pytest.raises(JobConfigChangedError) as err:
        run_job(prepare_job(cfg, "j"))
    assert "attempts: 2 -> 3" in str(err.value) and "variants[0].agent: 'oracle' -> 'nop'" in str(err.value)


def _slow_block(block_factory, tmp_path: Path, n: int) -> Path:
    extra = tmp_path / "extra"
    for i in range(n):
        write_task(extra, f"t{i:02d}", test_sh="echo 1 > /logs/verifier/reward.txt\n",
                   solve_sh="#!/usr/bin/env bash\nsleep 0.4\n")
    return block_factory(extra_tasks_dir=extra, concurrency=2)


def _runner(root: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "trialbook.cli.main", "run", "-c", str(root / "config.yaml"), "--job", "j"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )


def _wait_for_finished(job: Path, n: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = 0
        for p in job.glob("*/trial.json"):
            with contextlib.suppress(ValueError):
                done += json.loads(p.read_text()).get("status") == "finished"
        if done >= n:
            return
        time.sleep(0.05)
    raise AssertionError("runner made no progress")


def test_kill_9_then_rerun_completes_every_trial_once(block_factory, tmp_path: Path) -> None:
    root = _slow_block(block_factory, tmp_path, 10)
    job = root / "artifacts" / "jobs" / "j"
    proc = _runner(root)
    _wait_for_finished(job, 3)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    proc2 = _runner(root)
    _, err = proc2.communicate(timeout=120)
    assert proc2.returncode == 0, err.decode()
    t = trials(job)
    assert len(t) == 10 and all(r["status"] == "finished" and r["outcome"] == "resolved" for r in t.values())
    for p in job.rglob("*.json"):
        json.loads(p.read_text())  # valid JSON everywhere
    agg = read_json(job / "results.json")
    assert agg["n_trials"] == 10 and agg["outcomes"] == {"resolved": 10}


def test_ctrl_c_marks_running_trials_cancelled_then_resume(block_factory, tmp_path: Path) -> None:
    root = _slow_block(block_factory, tmp_path, 10)
    job = root / "artifacts" / "jobs" / "j"
    proc = _runner(root)
    _wait_for_finished(job, 2)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    t = trials(job)
    assert all(r["status"] == "finished" for r in t.values())
    n_cancelled = sum(r["outcome"] == "cancelled" for r in t.values())
    n_finished = len(t) - n_cancelled
    assert n_cancelled >= 1
    message = " ".join(err.decode().split())  # rich may wrap the line
    assert (f"job j interrupted: {n_finished} of 10 trials finished; {n_cancelled} cancelled and "
            f"{10 - len(t)} not started run when the job is resumed. "
            f"Resume with: trialbook run -b {root} --job j") in message
    assert "Unknown child process" not in err.decode()
    agg = read_json(job / "results.json")
    assert agg["status"] == "cancelled"
    status = yaml.safe_load((root / "config.yaml").read_text())["status"]
    assert status["state"] == "cancelled" and (status["done"], status["total"]) == (n_finished, 10)
    proc2 = _runner(root)
    proc2.communicate(timeout=120)
    assert proc2.returncode == 0
    t = trials(job)
    assert len(t) == 10 and all(r["outcome"] == "resolved" for r in t.values())


def test_run_from_a_subdirectory_with_overrides(block_factory) -> None:
    root = block_factory(tasks=EXAMPLES, variants=[{"name": "oracle", "agent": "oracle"},
                                                   {"name": "nop", "agent": "nop"}], attempts=3)
    sub = root / "artifacts"
    res = subprocess.run([sys.executable, "-m", "trialbook.cli.main", "run", "--job", "picked", "-k", "2",
                          "-n", "2", "--task", "hello-*", "--task", "count-*", "--variant", "oracle",
                          "--json"], cwd=sub, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["results"]["n_trials"] == 4 and list(out["results"]["variants"]) == ["oracle"]
    assert sorted(trials(Path(out["job_dir"]))) == [
        "count-words__oracle__1", "count-words__oracle__2", "hello-world__oracle__1", "hello-world__oracle__2"]
    snapshot = yaml.safe_load((Path(out["job_dir"]) / "config.yaml").read_text())
    assert snapshot["attempts"] == 2 and snapshot["tasks"]["include"] == ["hello-*", "count-*"]
    unknown = subprocess.run([sys.executable, "-m", "trialbook.cli.main", "run", "-b", str(root),
                              "--variant", "gpt"], capture_output=True, text=True)
    assert unknown.returncode == 2 and "--variant gpt: no such variant (the config has: oracle, nop)" in unknown.stderr


def test_progress_lines_when_output_is_not_a_terminal(block_factory) -> None:
    root = block_factory(tasks=["hello-world", "count-words"], attempts=2)
    res = subprocess.run([sys.executable, "-m", "trialbook.cli.main", "run", "--job", "logged"],
                         cwd=root, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.startswith("job logged:")]
    assert lines[0] == "job logged: 4 trials planned"
    assert lines[-1].startswith("job logged: 4/4 done (resolved=4), elapsed 0:00:")
    assert "\x1b[" not in res.stderr  # no terminal control codes in a log


def test_resume_refuses_tasks_changed_since_the_job_started(block_factory) -> None:
    root = block_factory(tasks=["hello-world", "count-words"], attempts=2)
    first = run_block(root / "config.yaml", "j").outcome
    assert (first.job_dir / "task_hashes.json").is_file()
    shutil.rmtree(first.job_dir / "hello-world__oracle__2")  # as if interrupted before this trial
    kept = (first.job_dir / "count-words__oracle__1" / "trial.json").read_bytes()
    test_sh = root / "tasks" / "hello-world" / "tests" / "test.sh"
    test_sh.write_text(test_sh.read_text() + "\n# stricter now\n")
    with pytest.raises(JobConfigChangedError) as err:
        run_block(root / "config.yaml", "j")
    message = str(err.value)
    assert "1 task(s) changed since the job started" in message and "hello-world (tests/test.sh)" in message
    assert "\n" not in message
    assert (first.job_dir / "count-words__oracle__1" / "trial.json").read_bytes() == kept  # nothing lost
    assert not (first.job_dir / "hello-world__oracle__2").exists()
    test_sh.write_text(test_sh.read_text().replace("\n# stricter now\n", ""))  # restored: resumes
    again = run_block(root / "config.yaml", "j").outcome
    assert again.resumed and again.n_skipped == 3 and len(again.records) == 4


def test_velora_run_interface_and_its_variables(block_factory) -> None:
    root = block_factory(tasks=["hello-world", "count-words"], variants=[
        {"name": "g", "agent": "command", "model": "gemini/gemini-2.5-pro",
         "command": "echo \"$INSTANCE_ID $MODEL_NAME $RUN_NUMBER ${BENCHMARK_TYPE:-none}\" > /logs/agent/vars.txt"},
        {"name": "c", "agent": "command", "model": "anthropic/claude-sonnet-4", "command": "true"},
        {"name": "o", "agent": "command", "model": "openai/gpt-5", "command": "true"}])
    res = subprocess.run([sys.executable, "-m", "trialbook.cli.main", "run", "--job", "v", "--models", "gemini,claude",
                          "--runs", "2", "--instances", "hello-world", "--json"], cwd=root, capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert sorted(out["results"]["variants"]) == ["c", "g"] and out["results"]["n_trials"] == 4
    job = Path(out["job_dir"])
    assert (job / "hello-world__g__2" / "agent" / "vars.txt").read_text() == "hello-world Gemini 2 none\n"
    bad = subprocess.run([sys.executable, "-m", "trialbook.cli.main", "run", "--models", "llama"], cwd=root,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--models llama: no variant has that model" in " ".join(bad.stderr.split())
    assert "claude, gemini, gpt" in " ".join(bad.stderr.split())
