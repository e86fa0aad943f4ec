"""Archive numbering under concurrency, and index.yaml consistency when archiving crashes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from conftest import requires_bwrap

from trialbook.app.archive_step import archive_job, run_info_from_job
from trialbook.app.pipeline import run_block
from trialbook.archive import archive as archive_mod
from trialbook.archive import index as index_mod
from trialbook.archive.archive import _claim, create_archive, repair_index
from trialbook.archive.index import list_archives, read_index
from trialbook.errors import ConfigError
from trialbook.layout.paths import BlockPaths

pytestmark = requires_bwrap

WORKER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from trialbook.app.archive_step import archive_job
    from trialbook.layout.paths import BlockPaths
    root, go, n, crash = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    if crash:  # die (no cleanup, like kill -9) at the named step of the archive
        import trialbook.archive.archive as a
        def die(*args, **kw):
            os._exit(17)
        if crash == "rename":
            os.rename = die  # this process only: archive.py renames the finished temp dir
        else:
            setattr(a, crash, die)
    while not go.exists():
        time.sleep(0.001)
    for _ in range(n):
        print(archive_job(BlockPaths(root), "j").number, flush=True)
""")


@pytest.fixture
def block(block_factory) -> Path:
    """A block with one finished job ``j`` (its run already made archive 1)."""
    root = block_factory(tasks=["hello-world"])
    run_block(root / "config.yaml", "j")
    assert (root / "artifacts" / "archives" / "run_001").is_dir()
    return root


def worker(root: Path, go: Path, n: int, crash: str = "") -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", WORKER, str(root), str(go), str(n), crash],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def assert_consistent(root: Path) -> list[dict]:
    """index.yaml parses, numbers are unique, and every entry's archive is complete."""
    data = yaml.safe_load((root / "artifacts" / "index.yaml").read_text())
    runs = data["runs"]
    numbers = [r["number"] for r in runs]
    assert len(numbers) == len(set(numbers))
    for r in runs:
        meta = yaml.safe_load((root / "artifacts" / "archives" / r["archive"] / "metadata.yaml").read_text())
        assert meta["number"] == r["number"] and meta["run_id"] == r["run_id"]
        for name in ("config.yaml", "session.log", "monitor.md", "scripts"):
            assert (root / "artifacts" / "archives" / r["archive"] / name).exists()
    assert not [w for w in list_archives(BlockPaths(root)).warnings if "missing" in w]
    return runs


def test_concurrent_archivers_get_distinct_numbers(block: Path, tmp_path: Path) -> None:
    go = tmp_path / "go"
    procs = [worker(block, go, 6) for _ in range(3)]
    time.sleep(0.5)  # let every worker import and wait at the start line
    go.touch()
    got: list[int] = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        got += [int(x) for x in out.split()]
    assert sorted(got) == list(range(2, 20))  # 18 archives, none lost, none shared
    runs = assert_consistent(block)
    assert [r["number"] for r in runs] == list(range(1, 20))
    assert sorted(p.name for p in (block / "artifacts" / "archives").iterdir()) == [
        f"run_{n:03d}" for n in range(1, 20)]  # no temp dirs left behind


def test_claim_skips_taken_numbers(block: Path) -> None:
    b = BlockPaths(block)
    (b.archives / "run_002").mkdir()  # e.g. claimed by another archiver right now
    assert _claim(b, 2).dir.name == "run_003"
    assert _claim(b, 1).dir.name == "run_004"


@pytest.mark.parametrize("crash", ["write_index", "rename"])
def test_hard_crash_at_each_step_leaves_index_valid(block: Path, tmp_path: Path, crash: str) -> None:
    b = BlockPaths(block)
    go = tmp_path / "go"
    go.touch()
    p = worker(block, go, 1, crash)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 17, err
    assert [r["number"] for r in assert_consistent(block)] == [1]
    listing = list_archives(b)
    assert len(listing.warnings) == 1 and "run_002 has no index entry" in listing.warnings[0]
    if crash == "write_index":  # renamed into place, not indexed: a complete orphan
        assert listing.entries[-1]["orphan"] and listing.entries[-1]["run_id"].startswith("j__")
        assert repair_index(b) == [f"indexed orphan archive run_002 (run {listing.entries[-1]['run_id']})"]
    else:  # died between claiming run_002 and renaming its temp dir onto it
        assert not any((b.archives / "run_002").iterdir())
        assert "incomplete" in listing.warnings[0]
        assert [d.name.startswith(".tmp-") for d in b.archives.iterdir()].count(True) == 1
    nxt = archive_job(b, "j")  # never reuses the number; removes the dead archiver's temp dir
    assert nxt.number == 3
    assert not [d for d in b.archives.iterdir() if d.name.startswith(".tmp-")]
    if crash == "rename":
        assert repair_index(b) == ["removed run_002: an empty claim left by a crashed archiver"]
    assert list_archives(b).warnings == []
    assert_consistent(block)


def test_random_kill_9_while_archiving_never_corrupts_the_index(block: Path, tmp_path: Path) -> None:
    rng = random.Random(1234)
    go = tmp_path / "go"
    go.touch()
    for _ in range(6):
        p = worker(block, go, 1000)
        assert p.stdout is not None
        first = p.stdout.readline()  # killed only once it is archiving, however slow its start on a busy machine
        assert first.strip().isdigit(), first
        time.sleep(rng.uniform(0.0, 0.6))
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=30)
        assert_consistent(block)
    b = BlockPaths(block)
    assert all("listed as an orphan" in w for w in list_archives(b).warnings)
    repair_index(b)
    runs = assert_consistent(block)
    assert list_archives(b).warnings == []
    assert len(runs) > 6  # the workers did make archives between the kills


def test_exceptions_mid_archive_roll_back_cleanly(block: Path, monkeypatch) -> None:
    b = BlockPaths(block)
    info = run_info_from_job(b, "j")
    before = (block / "artifacts" / "index.yaml").read_text()

    def broken_rename(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(archive_mod.os, "rename", broken_rename)
    with pytest.raises(OSError):
        create_archive(info)
    monkeypatch.undo()
    assert sorted(p.name for p in b.archives.iterdir()) == ["run_001"]  # claim released, temp removed
    assert (block / "artifacts" / "index.yaml").read_text() == before

    def broken_write(path: Path, text: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(index_mod, "atomic_write_text", broken_write)
    with pytest.raises(OSError):
        create_archive(info)
    monkeypatch.undo()
    assert (block / "artifacts" / "index.yaml").read_text() == before  # untouched, still valid
    assert [r["number"] for r in read_index(b)] == [1]
    assert "run_002 has no index entry" in list_archives(b).warnings[0]  # the documented orphan case
    assert create_archive(info).number == 3


def test_malformed_index_stops_archiving_before_claiming(block: Path) -> None:
    b = BlockPaths(block)
    b.archive_index.write_text("runs: [unclosed\n")
    with pytest.raises(ConfigError, match="refusing to rewrite"):
        archive_job(b, "j")
    assert b.archive_index.read_text() == "runs: [unclosed\n"
    assert sorted(p.name for p in b.archives.iterdir()) == ["run_001"]
    b.archive_index.write_text("runs:\n- {archive: run_001}\n")  # an entry without a number
    with pytest.raises(ConfigError):
        archive_job(b, "j")


def test_index_entry_without_archive_is_reported(block: Path) -> None:
    b = BlockPaths(block)
    archive_job(b, "j")
    os.rename(b.archives / "run_002", b.root / "moved-away")
    listing = list_archives(b)
    assert [e["present"] for e in listing.entries] == [True, False]
    assert listing.warnings == ["index entry 2 (" + listing.entries[1]["run_id"]
                                + "): archive directory run_002 is missing"]
    assert archive_job(b, "j").number == 3  # the missing number is not reused
