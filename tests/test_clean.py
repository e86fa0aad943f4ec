"""``trialbook clean`` and scripts/clean.sh: runtime outputs go, history and config stay."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from trialbook.archive.clean import clean_block
from trialbook.block.init import init_block
from trialbook.errors import ConfigError
from trialbook.run.job import JobLock

RUNTIME = ["artifacts/jobs/j/t/trial.json", "artifacts/sft_data/j/lf.json", "litellm/call.jsonl",
           "logs/session-j.log", "logs/monitor.md", "dashboard/site/index.html",
           "dashboard/.cache/blob.bin", "results/index.db"]
KEPT = ["artifacts/archives/run_001/metadata.yaml", "artifacts/archives/run_001/session.log",
        "artifacts/archives/.tmp-1-x/config.yaml", "artifacts/index.yaml", "scripts/analyze_job.sh",
        "tasks/t/task.toml", "repos/r/README", "notes.md"]


def tb(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
       ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "trialbook.cli.main", *args], capture_output=True,
                          text=True, cwd=cwd, env=env)


@pytest.fixture
def block(tmp_path: Path) -> Path:
    """An eval block with a planted file in every runtime output and every kept place."""
    root = tmp_path / "block"
    init_block(root, "eval")
    for rel in RUNTIME + KEPT:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"planted {rel}\n")
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_clean_removes_runtime_outputs_and_keeps_history(block: Path) -> None:
    config_before = (block / "config.yaml").read_bytes()
    kept_before = {rel: (block / rel).read_bytes() for rel in KEPT}
    removed = clean_block(block)
    # everything the block's .gitignore lists as runtime output, the index and .trialbook/ included
    assert sorted(str(r.path.relative_to(block)) for r in removed) == [
        ".trialbook", "artifacts/jobs", "artifacts/sft_data", "dashboard/.cache", "dashboard/site", "litellm",
        "logs", "results"]
    for rel in RUNTIME:
        assert not (block / rel).exists(), rel
    for rel, data in kept_before.items():
        assert (block / rel).read_bytes() == data, rel
    assert (block / "config.yaml").read_bytes() == config_before
    assert clean_block(block) == []  # nothing left to do


def test_repos_only_with_flag(block: Path) -> None:
    clean_block(block)
    assert (block / "repos" / "r" / "README").exists()
    removed = clean_block(block, repos=True)
    assert [r.what for r in removed] == ["repositories"] and not (block / "repos").exists()
    assert (block / "artifacts" / "archives" / "run_001" / "metadata.yaml").exists()


def test_dry_run_removes_nothing(block: Path) -> None:
    before = snapshot(block)
    res = tb("clean", "--dry-run", "--repos", "--json", cwd=block)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["dry_run"] is True and len(data["removed"]) == 9
    assert any(r["what"] == "logs" and r["files"] == 2 for r in data["removed"])
    assert snapshot(block) == before
    human = tb("clean", "--dry-run", cwd=block)
    assert "would remove" in human.stdout and snapshot(block) == before


def test_cli_prints_what_it_removes(block: Path) -> None:
    res = tb("clean", "--block", str(block))
    assert res.returncode == 0, res.stderr
    assert any(line.startswith("removed logs/ (logs: 2 files, ") for line in res.stdout.splitlines())
    assert "removed artifacts/jobs/ (jobs: 1 files" in res.stdout
    assert "archives" not in res.stdout and "index.yaml" not in res.stdout
    assert tb("clean", "--block", str(block)).stdout.startswith("nothing to clean")


def test_refuses_outside_a_block(tmp_path: Path, block: Path) -> None:
    (tmp_path / "elsewhere" / "logs").mkdir(parents=True)
    res = tb("clean", cwd=tmp_path / "elsewhere")
    assert res.returncode == 2 and "not a trialbook block directory" in res.stderr
    assert (tmp_path / "elsewhere" / "logs").is_dir()
    # a subdirectory of a block is not the block: nothing is cleaned from there either
    res = tb("clean", cwd=block / "tasks")
    assert res.returncode == 2 and (block / "logs").is_dir()
    # a config.yaml that is not a block config
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.yaml").write_text("server: {port: 80}\n")
    (tmp_path / "other" / "artifacts").mkdir()
    with pytest.raises(ConfigError, match="not a trialbook block"):
        clean_block(tmp_path / "other")


def test_refuses_misconfigured_output_dir_that_holds_history(block: Path) -> None:
    cfg = yaml.safe_load((block / "config.yaml").read_text())
    cfg["runtime_info"]["output"]["eval_results_dir"] = "artifacts"
    (block / "config.yaml").write_text(yaml.safe_dump(cfg))
    before = snapshot(block)
    with pytest.raises(ConfigError, match="clean never removes"):
        clean_block(block)
    assert snapshot(block) == before


def test_configured_jobs_dir_is_cleaned_and_links_are_not_followed(block: Path, tmp_path: Path) -> None:
    cfg = yaml.safe_load((block / "config.yaml").read_text())
    cfg["runtime_info"]["output"]["eval_results_dir"] = "out/jobs"
    (block / "config.yaml").write_text(yaml.safe_dump(cfg))
    (block / "out" / "jobs" / "j").mkdir(parents=True)
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "data.txt").write_text("keep me")
    (block / "litellm").rename(block / "litellm-old")
    (block / "litellm").symlink_to(outside)
    clean_block(block)
    assert not (block / "out" / "jobs").exists() and (block / "out").is_dir()
    assert not (block / "litellm").exists() and (outside / "data.txt").read_text() == "keep me"


def test_refuses_while_a_job_runs(block: Path) -> None:
    with JobLock(block / "artifacts" / "jobs" / "j" / ".lock"):
        with pytest.raises(ConfigError, match="job\\(s\\) j are running"):
            clean_block(block)
        assert (block / "logs").is_dir()
    assert clean_block(block)  # lock released: cleans


def test_scripts_clean_sh_calls_trialbook_clean(block: Path) -> None:
    env = {**os.environ, "TRIALBOOK": str(Path(sys.executable).parent / "trialbook")}
    script = block / "scripts" / "clean.sh"
    res = subprocess.run([str(script), "--dry-run"], capture_output=True, text=True, env=env,
                         cwd=block.parent)
    assert res.returncode == 0, res.stderr
    assert "would remove" in res.stdout and (block / "logs").is_dir()
    res = subprocess.run([str(script), "--repos"], capture_output=True, text=True, env=env, cwd="/")
    assert res.returncode == 0, res.stderr
    assert not (block / "logs").exists() and not (block / "repos").exists()
    assert (block / "artifacts" / "archives" / "run_001" / "metadata.yaml").exists()
    assert (block / "artifacts" / "index.yaml").exists()


USER_GITIGNORE = """\
# my own entries: not runtime outputs
.venv/
.env
notes-private.md

# trialbook runtime outputs (removed by scripts/clean.sh); archives and index.yaml are kept.
artifacts/jobs/
artifacts/sft_data/
litellm/
logs/
repos/
results/index.db
dashboard/site/
dashboard/.cache/
*.pyc
**/__pycache__/
tmp-*
!tmp-keep

# more of my own
personal/
"""


def test_clean_follows_the_runtime_section_of_the_gitignore(block: Path) -> None:
    """The spec's block layout with a .gitignore a user extended: only its runtime-output section counts,
    wildcards and negations as git reads them, and never archives, config or scripts."""
    (block / ".gitignore").write_text(USER_GITIGNORE)
    gone = ["results/index.db", "tasks/t/a.pyc", "tasks/t/__pycache__/m.cpython-311.pyc", "tmp-1/out.txt",
            "artifacts/jobs/j/t/trial.json", "litellm/call.jsonl", "logs/session-j.log",
            "dashboard/site/index.html", "dashboard/.cache/blob.bin"]
    kept = [".venv/bin/python", ".env", "notes-private.md", "personal/diary.md", "results/notes.md",
            "tmp-keep/x.txt", "scripts/__pycache__/s.pyc", "artifacts/archives/run_001/inputs/tasks/t/a.pyc",
            "artifacts/archives/run_001/inputs/tasks/t/__pycache__/m.pyc", "repos/r/README"]
    for rel in gone + kept:
        p = block / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(rel)
    removed = {str(r.path.relative_to(block)) for r in clean_block(block)}
    assert {"results/index.db", "tasks/t/a.pyc", "tasks/t/__pycache__", "tmp-1"} <= removed
    for rel in gone:
        assert not (block / rel).exists(), rel
    for rel in kept:
        assert (block / rel).read_text() == rel, rel
    assert (block / "config.yaml").is_file() and (block / "artifacts" / "index.yaml").is_file()
    clean_block(block, repos=True)
    assert not (block / "repos").exists() and (block / ".venv" / "bin" / "python").exists()


def test_gitignore_without_the_section_never_removes_venv_or_env(block: Path) -> None:
    (block / ".gitignore").write_text(".venv/\n.env\nlogs/\nresults/\n")
    for rel in (".venv/bin/python", ".env"):
        (block / rel).parent.mkdir(parents=True, exist_ok=True)
        (block / rel).write_text("x")
    removed = {str(r.path.relative_to(block)) for r in clean_block(block)}
    assert "results" in removed and "logs" in removed
    assert (block / ".venv" / "bin" / "python").exists() and (block / ".env").exists()
