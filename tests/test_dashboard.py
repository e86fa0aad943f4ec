"""The dashboard builder without a browser: safe data files, the incremental cache, hostile files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dashboard_trees import TRIAL_DIRS, trajectory, write_hostile_job, write_live_job

from trialbook.dashboard import build_site, resolve_site
from trialbook.dashboard.jobpage import job_id, trial_id
from trialbook.dashboard.jsdata import data_script
from trialbook.dashboard.texts import CHUNK, HEAD, TEXT_CAP, TextStore
from trialbook.errors import TrialbookError


def _age(*paths: Path, seconds: float = 30) -> None:
    """Move mtimes into the past (a file changed within a second of a build counts as racy);
    a directory with everything under it."""
    past = time.time() - seconds
    for root in paths:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                os.utime(os.path.join(dirpath, name), (past, past), follow_symlinks=False)
        os.utime(root, (past, past))


def _payload(script: bytes) -> object:
    prefix, _, rest = script.partition(b",")
    assert prefix.startswith(b'TB.put("') and rest.endswith(b");\n")
    return json.loads(rest[:-3])


def test_data_files_cannot_end_a_script_or_break_a_line() -> None:
    value = {"a": "</script><script>alert(1)</script><!-- & \u2028\u2029", "<key>": ["é", None, 1.5]}
    script = data_script("trial/abc/def", value)
    assert b"<" not in script and b">" not in script and b"&" not in script
    assert "\u2028".encode() not in script and "\u2029".encode() not in script
    assert _payload(script) == value  # the escapes change nothing of the value


@pytest.mark.parametrize("key", ["../x", "job/<img>", "JOB/1", "job/a b", ""])
def test_data_keys_are_only_words_and_ids(key: str) -> None:
    with pytest.raises(ValueError):
        data_script(key, {})


def test_long_texts_keep_a_head_and_spill_into_chunks() -> None:
    store = TextStore("more/j/t")
    text = "".join(chr(65 + i % 26) for i in range(HEAD + 2 * CHUNK + 10))
    cut = store.text(text)
    assert cut["head"] == text[:HEAD] and cut["len"] == len(text) and not cut["cut"]
    assert cut["head"] + "".join(store.files[k] for k in cut["more"]) == text
    huge = store.text("x" * (TEXT_CAP + 5))
    assert huge["cut"] and sum(len(store.files[k]) for k in huge["more"]) + HEAD == TEXT_CAP
    assert store.text("short") == "short" and store.text(None) is None


def test_rebuild_touches_only_what_changed(tmp_path: Path) -> None:
    root = tmp_path / "jobs"
    write_live_job(root, finished=4)
    hostile = write_hostile_job(root)
    _age(root)
    spec = resolve_site(None, [root], tmp_path / "site")
    first = build_site(spec, workers=1)
    assert (first.jobs, first.trials, first.trials_built) == (2, 6, 6)
    data = spec.out / "data"
    assert (spec.out / "index.html").is_file() and (spec.out / "assets" / "plotly.min.js").stat().st_size > 1e6
    again = build_site(spec, workers=1)
    assert (again.trials_built, again.trials_unchanged, again.files_written) == (0, 6, 0)

    # one trajectory rewritten: that trial's page alone is rebuilt, with the new content
    t1 = hostile / TRIAL_DIRS[0]
    (t1 / "agent" / "trajectory.json").write_text(json.dumps(trajectory([{"source": "user", "message": "NEW TEXT"}])))
    _age(t1 / "agent" / "trajectory.json", seconds=20)
    third = build_site(spec, workers=1)
    assert (third.trials_built, third.trials_unchanged) == (1, 5)
    page = data / "trial" / job_id(str(hostile)) / f"{trial_id(str(t1))}.js"
    assert "NEW TEXT" in page.read_text()

    # a trial removed: its page goes too; a job removed: all of its pages
    (root / "live-job" / "task4" / "trial.json").unlink()
    (root / "live-job" / "task4").rmdir()
    _age(root / "live-job", seconds=10)
    fourth = build_site(spec, workers=1)
    assert fourth.trials_removed == 1 and fourth.trials == 5
    assert not (data / "trial" / job_id(str(root / "live-job")) / f"{trial_id(str(root / 'live-job' / 'task4'))}.js").exists()
    summary = _payload((data / "job" / f"{job_id(str(root / 'live-job'))}.js").read_bytes())["summary"]
    assert summary["n_trials"] == 3


def test_fifo_and_links_out_of_the_tree_are_not_read(tmp_path: Path) -> None:
    root = tmp_path / "jobs"
    job = write_hostile_job(root)
    ev = job / TRIAL_DIRS[0] / "evaluation"
    (ev / "patch.diff").unlink()
    os.mkfifo(ev / "patch.diff")  # reading it would block the build forever
    (ev / "test_output.txt").unlink()
    secret = tmp_path / "secret.txt"
    secret.write_text("HOST SECRET")
    (ev / "test_output.txt").symlink_to(secret)
    spec = resolve_site(None, [root], tmp_path / "site")
    stats = build_site(spec, workers=1)
    assert stats.trials_built == 2
    page = (spec.out / "data" / "trial" / job_id(str(job)) / f"{trial_id(str(job / TRIAL_DIRS[0]))}.js").read_text()
    assert "HOST SECRET" not in page
    files = [f["name"] for f in _payload(page.encode())["files"]]
    assert files == []


def test_where_the_site_goes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TrialbookError, match="nothing to show"):
        resolve_site(None, [])
    with pytest.raises(TrialbookError, match="not found"):
        resolve_site(None, [tmp_path / "missing"])
    write_live_job(tmp_path / "jobs", finished=1)
    spec = resolve_site(None, [tmp_path / "jobs"], tmp_path / "out" / "site")
    assert spec.cache == tmp_path / "out" / ".cache" and spec.db == spec.cache / "index.db"


def test_cli_builds_a_foreign_tree_without_writing_into_it(tmp_path: Path) -> None:
    root = tmp_path / "jobs"
    write_live_job(root, finished=2)
    before = sorted(str(p) for p in root.rglob("*"))
    out = subprocess.run([sys.executable, "-m", "trialbook.cli.main", "dashboard", str(root), "--out",
                          str(tmp_path / "www"), "--json"], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert Path(result["index_html"]).is_file() and result["jobs"] == 1 and result["trials"] == 4
    assert sorted(str(p) for p in root.rglob("*")) == before
    assert (tmp_path / "www.cache" / "index.db").is_file()
