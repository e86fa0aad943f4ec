"""Run archives made by real jobs: contents, index entry, status, git state, secrets, CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import requires_bwrap, write_task

from trialbook.app import pipeline
from trialbook.app.archive_step import archive_job
from trialbook.app.pipeline import register_post_run, run_block
from trialbook.layout.paths import BlockPaths

pytestmark = requires_bwrap

EXAMPLES = ["broken-verifier", "count-words", "fix-the-bug", "hello-world", "make-script"]
SECRET_ENV = "s3cr3t-env-value-4242"
SECRET_LITERAL = "literal-config-secret-9191"
SECRET_PATH_VALUE = "listed-under-secrets-7373"


def tb(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
       ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "trialbook.cli.main", *args], capture_output=True,
                          text=True, cwd=cwd, env=env)


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_run_writes_complete_archive_index_entry_and_status(block_factory) -> None:
    root = block_factory(tasks=EXAMPLES, variants=[{"name": "oracle", "agent": "oracle"},
                                                   {"name": "nop", "agent": "nop"}], attempts=3)
    report = run_block(root / "config.yaml", "demo")
    assert report.step_errors == {}
    assert report.steps["archive"]["number"] == 1
    arch = root / "artifacts" / "archives" / "run_001"
    assert sorted(p.name for p in arch.iterdir()) == ["config.yaml", "inputs", "metadata.yaml", "monitor.md",
                                                      "scripts", "session.log"]
    meta = load(arch / "metadata.yaml")
    assert meta["number"] == 1 and meta["archive"] == "run_001" and meta["job"] == "demo"
    assert meta["run_id"].startswith("demo__") and meta["status"] == "completed"
    assert meta["block_kind"] == "eval" and meta["trigger"] == "run"
    assert meta["started_at"] < meta["finished_at"] <= meta["archived_at"]
    res = meta["results"]
    assert res["outcomes"] == {"resolved": 12, "unresolved": 12, "verifier_error": 6}
    assert res["n_trials"] == 30 and res["success_rate"] == pytest.approx(12 / 30)
    assert res["variants"]["oracle"]["pass_at_k"]["3"] == pytest.approx(0.8)
    assert res["variants"]["nop"]["success_rate"] == 0
    assert meta["versions"]["python"].count(".") == 2 and meta["versions"]["trialbook"]
    tasks = {t["name"]: t["hash"] for t in meta["inputs"]["tasks"]}
    assert sorted(tasks) == EXAMPLES and all(h.startswith("sha256:") and len(h) == 71 for h in tasks.values())
    assert meta["inputs"]["config"]["attempts"] == 3 and "status" not in meta["inputs"]["config"]
    assert meta["repos"]["block"]["git"] is False
    assert load(arch / "config.yaml")["variants"][1]["name"] == "nop"
    assert sorted(p.name for p in (arch / "scripts").iterdir()) == ["analyze_job.sh", "clean.sh"]
    assert os.access(arch / "scripts" / "clean.sh", os.X_OK)
    log = (arch / "session.log").read_text()
    assert "trial hello-world__oracle__1 started" in log
    assert "trial broken-verifier__nop__2 finished: verifier_error" in log
    assert "job demo completed" in log and "post-run step archive started" in log
    monitor = (arch / "monitor.md").read_text()
    assert "30 / 30 (100%)" in monitor and "State **completed**" in monitor
    index = load(root / "artifacts" / "index.yaml")
    assert [r["number"] for r in index["runs"]] == [1]
    entry = index["runs"][0]
    assert entry["run_id"] == meta["run_id"] and entry["archive"] == "run_001"
    assert entry["results"]["n_trials"] == 30 and entry["results"]["n_resolved"] == 12
    assert entry["results"]["variants"]["oracle"]["pass_at_1"] == pytest.approx(0.8)
    status = load(root / "config.yaml")["status"]
    assert status["last_run_id"] == meta["run_id"] and status["last_archive"] == 1
    assert status["state"] == "completed"  # the scheduler's snapshot is kept

    # a resumed run of the same job is a new run: next number, its own log section
    # re-running a complete job runs nothing, so it archives nothing new
    time.sleep(1.1)
    noop = run_block(root / "config.yaml", "demo")
    assert noop.steps["archive"] == {"skipped": "no trial ran: the job was already complete, and its run is archived"}
    assert not (root / "artifacts" / "archives" / "run_002").exists()
    # a resumed run that does run trials is a new run: next number, its own log section
    shutil.rmtree(root / "artifacts" / "jobs" / "demo" / "hello-world__nop__2")
    run_block(root / "config.yaml", "demo")
    meta2 = load(root / "artifacts" / "archives" / "run_002" / "metadata.yaml")
    assert meta2["run_id"] != meta["run_id"] and meta2["number"] == 2
    log2 = (root / "artifacts" / "archives" / "run_002" / "session.log").read_text()
    assert "30 trials planned, 29 already done (resumed)" in log2 and "trial hello-world__nop__2 started" in log2
    assert load(root / "config.yaml")["status"]["last_archive"] == 2


def test_archive_is_the_last_post_run_step(block_factory, monkeypatch) -> None:
    root = block_factory(tasks=["hello-world"])
    monkeypatch.setattr(pipeline, "POST_RUN_STEPS", list(pipeline.POST_RUN_STEPS))
    seen: list[str] = []

    @register_post_run("late-summary")  # registered after the archive step
    def summary(setup, outcome):
        seen.append("summary")
        return {"ok": True}

    report = run_block(root / "config.yaml", "j")
    # the archive follows every registered step; only the store's upload (of the archive too) is after it
    assert list(report.steps)[-3:] == ["late-summary", "archive", "store"] and seen == ["summary"]
    log = (root / "artifacts" / "archives" / "run_001" / "session.log").read_text()
    assert "post-run step late-summary finished" in log


def test_git_commits_and_dirty_flags(block_factory, tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    write_task(dataset, "t1", test_sh="echo 1 > /logs/verifier/reward.txt\n")
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q", str(dataset)], check=True)
    subprocess.run([*git, "-C", str(dataset), "add", "."], check=True)
    subprocess.run([*git, "-C", str(dataset), "commit", "-qm", "tasks"], check=True)
    root = block_factory(tasks=["hello-world"])
    cfg = load(root / "config.yaml")
    cfg["tasks"]["path"] = str(dataset)
    (root / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    subprocess.run([*git, "init", "-q", str(root)], check=True)
    subprocess.run([*git, "-C", str(root), "add", "config.yaml", "scripts"], check=True)
    subprocess.run([*git, "-C", str(root), "commit", "-qm", "block"], check=True)
    (root / "notes.txt").write_text("uncommitted")  # the block is dirty, the dataset is clean
    run_block(root / "config.yaml", "j")
    repos = load(root / "artifacts" / "archives" / "run_001" / "metadata.yaml")["repos"]
    head = lambda d: subprocess.run(["git", "-C", str(d), "rev-parse", "HEAD"], capture_output=True,  # noqa: E731
                                    text=True, check=True).stdout.strip()
    assert repos["block"]["git"] is True and repos["block"]["head"] == head(root)
    assert repos["block"]["dirty"] is True
    assert repos["dataset"]["head"] == head(dataset) and repos["dataset"]["dirty"] is False
    assert len(repos["dataset"]["head"]) == 40


def _all_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def test_secrets_never_reach_the_archives(block_factory, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MY_SERVICE_API_KEY", SECRET_ENV)
    extra = tmp_path / "extra"
    write_task(extra, "leaky", test_sh="echo 0 > /logs/verifier/reward.txt\n")
    root = block_factory(
        extra_tasks_dir=extra,
        # the config hands out secrets three ways: a ${VAR} expansion, a credential key's literal
        # value, and a `secrets:` path; the agent prints what it was given
        variants=[{"name": "c", "agent": "command", "command": "echo using $SERVICE_URL $PASSTHROUGH; exit 3",
                   "settings": {"api_key": SECRET_LITERAL, "header": "Bearer ${MY_SERVICE_API_KEY}"},
                   "env": {"PASSTHROUGH": SECRET_PATH_VALUE}}],
        environment={"env": {"SERVICE_URL": "https://x/?k=${MY_SERVICE_API_KEY}"}},
        secrets=["variants.0.env.PASSTHROUGH"],
    )
    (root / "scripts" / "deploy.sh").write_text(f"#!/bin/sh\ncurl -H 'key: {SECRET_LITERAL}' x\n")
    run_block(root / "config.yaml", "j")
    archive_job(BlockPaths(root), "j")  # the on-demand path too
    archives = root / "artifacts" / "archives"
    assert sorted(p.name for p in archives.iterdir() if not p.name.startswith(".")) == ["run_001", "run_002"]
    blob = _all_bytes(archives) + (root / "artifacts" / "index.yaml").read_bytes()
    written = b"".join(_all_bytes(root / d) for d in ("artifacts", "results", "logs") if (root / d).exists())
    for secret in (SECRET_ENV, SECRET_LITERAL, SECRET_PATH_VALUE):
        assert secret.encode() not in blob, secret
        assert secret.encode() not in written, secret  # nowhere trialbook wrote, the agent's stdout too
    assert b"using https://x/?k=***REDACTED*** ***REDACTED***" in (
        root / "artifacts" / "jobs" / "j" / "leaky" / "agent" / "stdout.txt").read_bytes()
    assert b"***REDACTED***" in (archives / "run_001" / "scripts" / "deploy.sh").read_bytes()
    cfg = load(archives / "run_001" / "config.yaml")
    assert cfg["variants"][0]["settings"]["api_key"] == "***REDACTED***"
    assert cfg["variants"][0]["env"]["PASSTHROUGH"] == "***REDACTED***"
    for p in archives.rglob("*.yaml"):
        yaml.safe_load(p.read_text())  # redaction never breaks the YAML


def test_cli_archive_show_and_archives(block_factory) -> None:
    root = block_factory(tasks=["hello-world", "count-words"])
    run_block(root / "config.yaml", "first")
    run_block(root / "config.yaml", "second")
    res = tb("archive", "--json", cwd=root)  # default: the last job
    assert res.returncode == 0, res.stderr
    made = json.loads(res.stdout)
    assert made["number"] == 3 and made["entry"]["job"] == "second" and made["entry"]["trigger"] == "manual"
    res = tb("archive", "first", "--block", str(root), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["entry"]["job"] == "first"
    assert tb("archive", "--json", "first", cwd=root).returncode == 0  # options first, then the job
    shown = tb("archive", "show", "3", "--json", cwd=root)
    meta = json.loads(shown.stdout)
    assert meta["number"] == 3 and meta["job"] == "second" and meta["results"]["n_trials"] == 2
    human = tb("archive", "show", "run_001", cwd=root)
    assert human.returncode == 0 and "run_id: first__" in human.stdout
    listing = json.loads(tb("archives", "--json", cwd=root).stdout)
    assert [(e["number"], e["job"]) for e in listing["archives"]] == [
        (1, "first"), (2, "second"), (3, "second"), (4, "first"), (5, "first")]
    assert listing["warnings"] == []
    table = tb("archives", "--block", str(root))
    assert table.returncode == 0 and "Archived runs" in table.stdout
    missing = tb("archive", "show", "42", cwd=root)
    assert missing.returncode == 3 and "archive 42 does not exist" in missing.stderr
    nojob = tb("archive", "nosuch", cwd=root)
    assert nojob.returncode == 3 and "job nosuch not found" in nojob.stderr
    assert load(root / "config.yaml")["status"]["last_archive"] == 5


def test_interrupted_run_is_archived_as_cancelled(block_factory, tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    for i in range(8):
        write_task(extra, f"t{i}", test_sh="echo 1 > /logs/verifier/reward.txt\n",
                   solve_sh="#!/usr/bin/env bash\nsleep 0.5\n")
    root = block_factory(extra_tasks_dir=extra, concurrency=2)
    proc = subprocess.Popen([sys.executable, "-m", "trialbook.cli.main", "run", "-c",
                             str(root / "config.yaml"), "--job", "j"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    monitor = root / "logs" / "monitor.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if monitor.exists() and json.loads(monitor.read_text() or "{}").get("done", 0) >= 2:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    meta = load(root / "artifacts" / "archives" / "run_001" / "metadata.yaml")
    assert meta["status"] == "cancelled" and meta["results"]["outcomes"].get("cancelled", 0) >= 1
    assert load(root / "artifacts" / "index.yaml")["runs"][0]["status"] == "cancelled"
    assert "job j cancelled" in (root / "artifacts" / "archives" / "run_001" / "session.log").read_text()
    assert "State **cancelled**" in (root / "artifacts" / "archives" / "run_001" / "monitor.md").read_text()
    assert load(root / "config.yaml")["status"]["last_archive"] == 1
