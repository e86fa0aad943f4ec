"""The host side of the sandbox boundary: harvesting what a sandbox left, reading reward files,
and the verifier's fresh directory, on trees built the way a hostile sandbox would build them.

Each check would hang, leak or copy a link if the safe open were missing; the end-to-end
attacks through bubblewrap are in ``test_sandbox_attacks`` and ``test_sandbox_phases``.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
import yaml
from conftest import requires_bwrap, write_task
from unprivileged import give, remove, running_as_root, shared_tmpdir, trialbook

from trialbook.run.scratch import TrialScratch, harvest
from trialbook.untrusted import read_capped


def _in_thread(fn, *args, timeout: float = 10.0, **kwargs):  # noqa: ANN001, ANN202 - test helper
    """Run ``fn`` in a thread and fail (instead of hanging the suite) if it blocks."""
    out: dict[str, object] = {}

    def target() -> None:
        try:
            out["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            out["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), f"{fn.__name__} blocked for {timeout}s"
    if "error" in out:
        raise out["error"]  # type: ignore[misc]
    return out["value"]


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, Path]:
    """A sandbox directory with ordinary files next to links, a FIFO, a huge file and host names."""
    secret = tmp_path / "host-secret.txt"
    secret.write_text("top-secret-value\n")
    secret_dir = tmp_path / "host-dir"
    secret_dir.mkdir()
    (secret_dir / "inside.txt").write_text("top-secret-value\n")
    src = tmp_path / "sandbox"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "notes.txt").write_text("kept\n")
    (src / "sub" / "deeper" / "result.json").write_text('{"ok": true}\n')
    (src / "leak.txt").symlink_to(secret)
    (src / "leakdir").symlink_to(secret_dir)
    (src / "zero.bin").symlink_to("/dev/zero")
    os.mkfifo(src / "pipe.txt")
    (src / "stdout.txt").write_text("forged stdout\n")
    with open(src / "big.log", "wb") as fh:
        fh.truncate(3 * 1024 * 1024)  # sparse: 3 MiB of zeros
    return src, tmp_path / "trial" / "agent"


def test_harvest_copies_regular_files_only(hostile: tuple[Path, Path]) -> None:
    src, dst = hostile
    dst.mkdir(parents=True)
    (dst / "stdout.txt").write_text("the host's stdout\n")
    report = _in_thread(harvest, src, dst, reserved=frozenset({"stdout.txt"}), max_file_bytes=1024 * 1024)

    assert (dst / "notes.txt").read_text() == "kept\n"
    assert (dst / "sub" / "deeper" / "result.json").read_text() == '{"ok": true}\n'
    assert (dst / "stdout.txt").read_text() == "the host's stdout\n"  # a reserved name is never replaced
    for name in ("leak.txt", "leakdir", "zero.bin", "pipe.txt"):
        assert not os.path.lexists(dst / name), name
    assert (dst / "big.log").stat().st_size == 1024 * 1024  # cut at the cap
    assert report.copied == 3
    notes = "\n".join(report.notes)
    for expected in ("leak.txt: symbolic link, not followed", "leakdir: symbolic link, not followed",
                     "zero.bin: symbolic link, not followed", "pipe.txt: not a regular file",
                     "stdout.txt: not kept (the host writes this file)", "big.log: larger than 1048576 bytes"):
        assert expected in notes, notes
    written = b"".join(p.read_bytes() for p in dst.rglob("*") if p.is_file())
    assert b"top-secret-value" not in written


def test_harvest_cuts_deep_nesting(tmp_path: Path) -> None:
    src = tmp_path / "sandbox"
    deep = src.joinpath(*["d"] * 40)
    deep.mkdir(parents=True)
    (deep / "bottom.txt").write_text("x")
    report = harvest(src, tmp_path / "out")
    assert any("nested deeper than" in n for n in report.notes)
    assert not list((tmp_path / "out").rglob("bottom.txt"))


def test_read_capped_refuses_links_fifos_and_oversize(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("top-secret-value")
    (tmp_path / "reward.txt").symlink_to(tmp_path / "secret")
    os.mkfifo(tmp_path / "reward.json")
    (tmp_path / "zero").symlink_to("/dev/zero")
    (tmp_path / "big").write_bytes(b"1" * 2048)
    (tmp_path / "ok").write_text("0.5\n")

    with pytest.raises(ValueError, match="symbolic link"):
        read_capped(tmp_path / "reward.txt", 1024)
    with pytest.raises(ValueError, match="not a regular file"):
        _in_thread(read_capped, tmp_path / "reward.json", 1024)
    with pytest.raises(ValueError, match="symbolic link"):
        read_capped(tmp_path / "zero", 1024)
    with pytest.raises(ValueError, match="larger than 1024 bytes"):
        read_capped(tmp_path / "big", 1024)
    with pytest.raises(FileNotFoundError):
        read_capped(tmp_path / "missing", 1024)
    assert read_capped(tmp_path / "ok", 1024) == b"0.5\n"


def test_fresh_verifier_dir_discards_what_was_planted(tmp_path: Path) -> None:
    box = TrialScratch(tmp_path / "scratch")
    box.create("Do it.")
    box.logs_verifier.mkdir(parents=True)
    (box.logs_verifier / "reward.json").write_text('{"reward": 1}')
    (box.logs_verifier / "reward.txt").write_text("1")
    assert box.fresh_verifier_dir() == ["reward.json", "reward.txt"]
    assert list(box.logs_verifier.iterdir()) == []
    assert box.fresh_verifier_dir() == []  # an untouched one has nothing to report


def test_fresh_verifier_dir_replaces_a_link_without_touching_its_target(tmp_path: Path) -> None:
    host = tmp_path / "host-dir"
    host.mkdir()
    (host / "precious.txt").write_text("keep me")
    box = TrialScratch(tmp_path / "scratch")
    box.create("Do it.")
    box.logs_verifier.parent.mkdir(parents=True, exist_ok=True)
    box.logs_verifier.symlink_to(host)
    assert box.fresh_verifier_dir() == ["verifier"]
    assert box.logs_verifier.is_dir() and not box.logs_verifier.is_symlink()
    assert (host / "precious.txt").read_text() == "keep me"


def test_phase_mounts(tmp_path: Path) -> None:
    """The mount table of docs/sandbox.md: what each phase sees, and which of it is writable."""
    box = TrialScratch(tmp_path / "scratch")
    box.create("Do it.")
    box.solution.mkdir()
    box.tests.mkdir()
    box.fresh_verifier_dir()
    agent = {m.target: m.writable for m in box.agent_mounts(with_solution=False)}
    oracle = {m.target: m.writable for m in box.agent_mounts(with_solution=True)}
    verifier = {m.target: m.writable for m in box.verifier_mounts()}
    assert agent == {"/app": True, "/logs/agent": True}
    assert oracle == {"/app": True, "/logs/agent": True, "/solution": False}
    assert verifier == {"/app": True, "/logs/agent": False, "/logs/verifier": True, "/tests": False}


@requires_bwrap
@pytest.mark.parametrize("unprivileged", [False, True], ids=["as-root", "as-unprivileged-user"])
def test_unreadable_scratch_is_removed(unprivileged: bool) -> None:
    """An agent that makes its directories unreadable or unwritable leaves no scratch behind
    (run as a user, trialbook can neither list nor empty them as they are)."""
    if unprivileged and not running_as_root():
        pytest.fail("this test starts the unprivileged run itself and must run as root (it does in CI)")
    base = shared_tmpdir()
    try:
        write_task(base / "dataset", "t", test_sh="echo 1 > /logs/verifier/reward.txt\n")
        root = base / "block"
        (root / "artifacts").mkdir(parents=True)
        command = ("mkdir -p /app/x/y /app/ro/z /logs/agent/q/r && touch /app/x/y/f /app/ro/z/g "
                   "&& chmod 500 /app/ro /app/ro/z && chmod 000 /app/x /logs/agent/q")
        config = {"kind": "eval", "tasks": {"path": str(base / "dataset")}, "attempts": 1,
                  "variants": [{"name": "a", "agent": "command", "command": command}]}
        (root / "config.yaml").write_text(yaml.safe_dump(config))
        if unprivileged:
            give(base)
        res = trialbook(["run", "--job", "j", "--json"], cwd=root, unprivileged=unprivileged)
        assert res.returncode == 0, res.stderr[-3000:]
        record = json.loads((root / "artifacts" / "jobs" / "j" / "t" / "trial.json").read_text())
        assert record["outcome"] == "resolved", record
        if unprivileged:  # root reads it anyway
            assert "agent: q/: not read (Permission denied)" in record["extra"]["sandbox_notes"]
        scratch = root / ".trialbook" / "scratch" / "j"
        assert not scratch.exists() or list(scratch.iterdir()) == []
    finally:
        remove(base)
