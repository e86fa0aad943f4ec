"""SafeTree's fast paths (one lstat per check, one open per read) keep its rules: nothing outside
the tree is seen or read, links inside are followed, a FIFO never blocks a read."""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path

import pytest

from trialbook.errors import SourceError
from trialbook.sources.safe import SafeTree


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    (root / "job" / "trial").mkdir(parents=True)
    (root / "job" / "trial" / "result.json").write_text('{"ok": 1}')
    (tmp_path / "secret.json").write_text('{"secret": 1}')
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "result.json").write_text('{"outside": 1}')
    os.symlink(tmp_path / "secret.json", root / "job" / "trial" / "leak.json")
    os.symlink(root / "job" / "trial" / "result.json", root / "job" / "trial" / "alias.json")
    os.symlink(tmp_path / "outside", root / "job" / "escape")
    os.mkfifo(root / "job" / "trial" / "fifo.json")
    return root


def test_predicates_never_see_outside(tree: Path) -> None:
    t = SafeTree(tree)
    trial = tree / "job" / "trial"
    assert t.is_file(trial / "result.json") and t.is_file(trial / "alias.json")
    assert not t.is_file(trial / "leak.json") and not t.is_file(trial / "fifo.json")
    assert not t.is_dir(tree / "job" / "escape") and not t.is_file(tree / "job" / "escape" / "result.json")
    assert not t.is_dir(str(tree / "..")) and t.is_dir(str(trial / ".."))
    assert not t.is_file(str(tree / ".." / "secret.json"))


def test_reads_follow_inside_links_only_and_never_block(tree: Path) -> None:
    t = SafeTree(tree)
    trial = tree / "job" / "trial"
    assert t.read_json(trial / "alias.json") == {"ok": 1}
    with pytest.raises(SourceError, match="points outside the results tree"):
        t.read_json(trial / "leak.json")
    with pytest.raises(SourceError, match="points outside the results tree"):
        t.read_json(tree / "job" / "escape" / "result.json")
    result: list[BaseException] = []

    def read_fifo() -> None:
        try:
            t.read_bytes(trial / "fifo.json")
        except SourceError as exc:
            result.append(exc)

    reader = threading.Thread(target=read_fifo, daemon=True)
    reader.start()
    reader.join(5)
    assert not reader.is_alive(), "reading a FIFO blocked"
    assert result and "not a regular file" in str(result[0])
    with pytest.raises(SourceError, match="file not found"):
        t.read_json(trial / "missing.json")
    assert t.read_json_if_present(trial / "missing.json") is None


def test_listing_leaves_outside_links_out_with_a_warning(tree: Path) -> None:
    t = SafeTree(tree)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert [p.name for p in t.subdirs(tree / "job")] == ["trial"]
        assert t.children(tree / "job" / "escape") == []
    messages = [str(w.message) for w in caught]
    assert any("escape: points outside the results tree" in m for m in messages), messages
    with pytest.warns(UserWarning, match="leak.json: points outside the results tree"):
        names = sorted(p.name for p in t.children(tree / "job" / "trial"))
    assert names == ["alias.json", "fifo.json", "result.json"]
