"""An archive alone reproduces its run: inputs copied (size-capped, hashes for the rest), every repository's
commit recorded (block, dataset, bare SWE clones under repos/), and ``archive restore`` + ``run`` give the
same results after the original tasks are gone."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import requires_bwrap, write_task

from trialbook.app.archive_step import archive_job
from trialbook.app.pipeline import run_block
from trialbook.app.swe_demo import build_example_repo, example_dir
from trialbook.archive import inputs as inputs_mod
from trialbook.archive.inputs import copy_inputs
from trialbook.archive.restore import restore_archive
from trialbook.block.init import init_block
from trialbook.errors import ConfigError
from trialbook.jsonio import read_json
from trialbook.layout.paths import BlockPaths
from trialbook.run.tasks import load_harbor_dataset

EXAMPLES = ["broken-verifier", "count-words", "fix-the-bug", "hello-world", "make-script"]
GIT = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]


def tb(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "trialbook.cli.main", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def outcomes(job_dir: Path) -> dict[tuple[str, str, int], tuple[str, float | None]]:
    """(task, variant, attempt) -> (outcome, reward) of every trial of a job, from trial.json."""
    out = {}
    for d in job_dir.iterdir():
        if (d / "trial.json").is_file():
            t = read_json(d / "trial.json")
            out[(t["task"], t["variant"], t["attempt"])] = (t["outcome"], t.get("reward"))
    return out


def head(d: Path) -> str:
    return subprocess.run(["git", "-C", str(d), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


@requires_bwrap
def test_rerun_from_the_archive_copy_after_the_tasks_are_deleted(block_factory, tmp_path: Path,
                                                                 monkeypatch) -> None:
    root = block_factory(tasks=EXAMPLES, variants=[{"name": "oracle", "agent": "oracle"},
                                                   {"name": "nop", "agent": "nop"}])
    report = run_block(root / "config.yaml", "demo")
    assert report.step_errors == {}
    before = outcomes(root / "artifacts" / "jobs" / "demo")
    assert len(before) == 10 and {o for o, _ in before.values()} == {"resolved", "unresolved", "verifier_error"}
    arch = root / "artifacts" / "archives" / "run_001"
    meta = load(arch / "metadata.yaml")
    copy = meta["inputs"]["copy"]
    assert copy["complete"] is True and copy["not_copied"] == [] and copy["tasks"] == EXAMPLES
    # the copy is the task directories byte for byte
    for name in EXAMPLES:
        src = root / "tasks" / name
        files = sorted(str(p.relative_to(src)) for p in src.rglob("*") if p.is_file())
        assert sorted(str(p.relative_to(arch / "inputs" / "tasks" / name))
                      for p in (arch / "inputs" / "tasks" / name).rglob("*") if p.is_file()) == files
        assert all((arch / "inputs" / "tasks" / name / f).read_bytes() == (src / f).read_bytes() for f in files)
    assert copy["files"] == sum(1 for p in (arch / "inputs").rglob("*") if p.is_file())

    # an archive made under a tiny cap copies what fits and hashes the rest; it cannot be restored alone
    monkeypatch.setattr(inputs_mod, "INPUTS_MAX_BYTES", 600)
    capped = archive_job(BlockPaths(root), "demo")
    cmeta = load(capped.path / "metadata.yaml")["inputs"]["copy"]
    assert cmeta["complete"] is False and cmeta["bytes"] <= 600 and cmeta["not_copied"]
    for miss in cmeta["not_copied"]:
        original = root / miss["path"]
        assert miss["sha256"] == hashlib.sha256(original.read_bytes()).hexdigest()
        assert miss["size"] == original.stat().st_size and not (capped.path / "inputs" / miss["path"]).exists()
    with pytest.raises(ConfigError, match="input copy is incomplete"):
        restore_archive(BlockPaths(root), capped.number, tmp_path / "nope")
    assert not (tmp_path / "nope").exists()

    # the dataset is gone: the archive alone reruns the run
    shutil.rmtree(root / "tasks")
    dest = tmp_path / "rerun"
    res = tb("archive", "restore", "1", str(dest), "--json", cwd=root)
    assert res.returncode == 0, res.stderr
    restored = json.loads(res.stdout)
    assert restored["job"] == "demo" and restored["tasks"] == EXAMPLES and restored["notes"] == []
    cfg = load(dest / "config.yaml")
    assert cfg["tasks"]["path"] == "tasks" and cfg["variants"] == load(arch / "config.yaml")["variants"]
    assert sorted(p.name for p in (dest / "scripts").iterdir()) == ["analyze_job.sh", "clean.sh"]
    rerun = run_block(dest / "config.yaml", "demo")
    assert rerun.step_errors == {}
    assert outcomes(dest / "artifacts" / "jobs" / "demo") == before
    again = load(dest / "artifacts" / "archives" / "run_001" / "metadata.yaml")
    assert again["inputs"]["tasks"] == [{**t, "source": str(dest / "tasks" / t["name"])}
                                       for t in meta["inputs"]["tasks"]]  # same content hashes
    assert again["results"]["outcomes"] == meta["results"]["outcomes"]
    # restoring never writes over something
    assert "new or empty directory" in tb("archive", "restore", "1", str(dest), cwd=root).stderr


def test_copy_records_links_redactions_and_what_does_not_fit(tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    write_task(dataset, "a", test_sh="echo 1 > /logs/verifier/reward.txt\n")
    write_task(dataset, "b", test_sh="echo 1 > /logs/verifier/reward.txt\n")
    (dataset / "a" / "environment").mkdir(exist_ok=True)
    (dataset / "a" / "environment" / "token.txt").write_text("key=SECRET-123456\n")
    (dataset / "a" / "environment" / "escape").symlink_to("/etc/passwd")
    (dataset / "b" / "environment").mkdir(exist_ok=True)
    (dataset / "b" / "environment" / "big.bin").write_bytes(b"x" * 5000)
    tasks = load_harbor_dataset(dataset, [], [])
    dest = tmp_path / "inputs"
    manifest = copy_inputs(tasks, None, dest, lambda b: b.replace(b"SECRET-123456", b"***REDACTED***"),
                           max_bytes=4000)
    assert manifest["tasks"] == ["a", "b"] and manifest["complete"] is False
    assert manifest["links"] == [{"path": "tasks/a/environment/escape", "target": "/etc/passwd"}]
    assert not (dest / "tasks" / "a" / "environment" / "escape").exists()
    assert manifest["redacted"] == [{"path": "tasks/a/environment/token.txt",
                                     "sha256": hashlib.sha256(b"key=SECRET-123456\n").hexdigest()}]
    assert (dest / "tasks" / "a" / "environment" / "token.txt").read_text() == "key=***REDACTED***\n"
    assert manifest["not_copied"] == [{"path": "tasks/b/environment/big.bin", "size": 5000,
                                       "sha256": hashlib.sha256(b"x" * 5000).hexdigest(),
                                       "reason": "over the archive's input size cap"}]
    assert (dest / "tasks" / "b" / "tests" / "test.sh").is_file()  # smaller files after it still fit


@requires_bwrap
def test_swe_run_records_bare_clones_and_reruns_from_the_archive(tmp_path: Path) -> None:
    root = tmp_path / "block"
    root.mkdir()
    build_example_repo(root / "calc-repo")
    rows = [json.loads(line) for line in example_dir().joinpath("instances.jsonl").read_text().splitlines()]
    (root / "instances.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))
    config = {"kind": "eval", "tasks": {"instances": "instances.jsonl"},
              "variants": [{"name": "oracle", "agent": "oracle"}], "concurrency": 2, "attempts": 1,
              "timeouts": {"environment_setup": 60, "agent": 30, "verifier": 30}}
    init_block(root, "eval", config_text=yaml.safe_dump(config, sort_keys=False))
    # the block is a git repository itself: its bare clones under repos/ must still be recorded each
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run([*GIT, "-C", str(root), "add", "config.yaml", "instances.jsonl"], check=True)
    subprocess.run([*GIT, "-C", str(root), "commit", "-qm", "block"], check=True)
    assert run_block(root / "config.yaml", "swe").step_errors == {}
    before = outcomes(root / "artifacts" / "jobs" / "swe")
    meta = load(root / "artifacts" / "archives" / "run_001" / "metadata.yaml")
    repos = meta["repos"]
    assert repos["block"]["head"] == head(root)
    bare = [v for k, v in repos.items() if k.startswith("repo:")]
    assert len(bare) == 1 and bare[0]["bare"] is True and bare[0]["origin"] == str((root / "calc-repo").resolve())
    assert bare[0]["head"] == head(root / "calc-repo")
    commits = {t["base_commit"] for t in meta["inputs"]["tasks"]}
    assert len(commits) == 2 and bare[0]["base_commits"] == sorted(commits) and bare[0]["missing_commits"] == []
    assert all(t["repo"] == str((root / "calc-repo").resolve()) for t in meta["inputs"]["tasks"])
    assert repos["swe:" + str((root / "calc-repo").resolve())]["head"] == head(root / "calc-repo")
    copy = meta["inputs"]["copy"]
    assert copy["instances"] == "instances.jsonl" and copy["complete"] is True
    arch_inst = root / "artifacts" / "archives" / "run_001" / "inputs" / "instances.jsonl"
    assert arch_inst.read_bytes() == (root / "instances.jsonl").read_bytes()

    (root / "instances.jsonl").unlink()
    dest = tmp_path / "rerun"
    result = restore_archive(BlockPaths(root), 1, dest)
    assert result.instances == "instances.jsonl" and (dest / "calc-repo").is_symlink()
    restored_tasks = load(dest / "config.yaml")["tasks"]
    assert restored_tasks["instances"] == "instances.jsonl" and "path" not in restored_tasks
    assert run_block(dest / "config.yaml", "swe").step_errors == {}
    assert outcomes(dest / "artifacts" / "jobs" / "swe") == before
