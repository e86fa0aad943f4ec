"""Readers on damaged trees: they read what is there or raise our own error naming the file.

Covers truncated JSONL (a job still running), unknown ATIF versions, trials missing their files,
symlinks leaving the tree, and a property test that corrupts fixture trees at random for every
registered reader and every fixture folder a reader recognises (other layouts join in as their
readers are registered).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trialbook.errors import SourceError, TrialbookError
from trialbook.jsonio import dumps
from trialbook.model.aggregate import aggregate
from trialbook.model.outcome import Outcome
from trialbook.results.summary import summarize_job
from trialbook.sources import detect_layout, get_reader, open_source
from trialbook.sources.registry import readers
from trialbook.sources.safe import SafeTree

FIXTURES = Path(__file__).parent / "fixtures"
DAMAGED = FIXTURES / "damaged"
HARBOR = FIXTURES / "harbor"
PIER = FIXTURES / "pier_copilot"
LEGACY = FIXTURES / "legacy"


def _quiet_detect(path: Path) -> str | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return detect_layout(path)
        except TrialbookError:
            return None


def fixture_trees() -> list[tuple[Path, str]]:
    """Fixture folders (or their direct sub-folders) that some registered reader recognises."""
    found: list[tuple[Path, str]] = []
    for top in sorted(p for p in FIXTURES.iterdir() if p.is_dir()):
        layout = _quiet_detect(top)
        if layout:
            found.append((top, layout))
            continue
        for sub in sorted(p for p in top.iterdir() if p.is_dir()):
            layout = _quiet_detect(sub)
            if layout:
                found.append((sub, layout))
    return found


def reader_names() -> list[str]:
    return sorted({r.name for r in readers()})


TREES = fixture_trees()
TREE_IDS = [str(p.relative_to(FIXTURES)) for p, _ in TREES]


def exercise(layout: str, path: Path) -> None:
    """Read ``path`` as ``layout`` and touch every trial's trajectory; only TrialbookError may escape, with a path."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            jobs = get_reader(layout).read(path)
        except TrialbookError as exc:
            assert exc.path is not None, f"error without a path: {exc}"
            return
        for job in jobs:
            dumps(aggregate(job.records, job=job.name))
            dumps(summarize_job(job))  # what `trialbook show` prints
            dumps([r.to_json_dict() for r in job.records])
            for trial in job.trials:
                try:
                    trial.trajectory()
                except TrialbookError as exc:
                    assert exc.path is not None, f"error without a path: {exc}"


def test_fixture_trees_are_found() -> None:
    layouts = {layout for _, layout in TREES}
    assert {"harbor", "legacy"} <= layouts
    assert {PIER, LEGACY, HARBOR} <= {p for p, _ in TREES}


@pytest.mark.parametrize("layout", reader_names())
@pytest.mark.parametrize("tree", [p for p, _ in TREES], ids=TREE_IDS)
def test_every_reader_on_every_fixture_reads_or_raises_our_error(layout: str, tree: Path) -> None:
    exercise(layout, tree)


# -- random corruption ---------------------------------------------------------------------

KINDS = ("truncate", "flip", "garbage", "delete", "empty", "link_passwd", "link_devzero",
         "link_outside", "to_dir", "dir_to_outside_link")
OPS = st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(KINDS), st.integers(0, 2**32)),
               min_size=1, max_size=4)


def corrupt(root: Path, outside: Path, ops: list[tuple[int, str, int]]) -> None:
    """Apply each (target index, kind, seed) to the copied tree."""
    for index, kind, seed in ops:
        rng = random.Random(seed)
        files = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
        dirs = sorted(p for p in root.rglob("*") if p.is_dir() and not p.is_symlink())
        if kind == "dir_to_outside_link":
            if not dirs:
                continue
            target = dirs[index % len(dirs)]
            shutil.rmtree(target)
            target.symlink_to(outside, target_is_directory=True)
            continue
        if not files:
            continue
        target = files[index % len(files)]
        data = target.read_bytes()
        if kind == "truncate":
            target.write_bytes(data[: rng.randrange(len(data) + 1)])
        elif kind == "flip" and data:
            buf = bytearray(data)
            for _ in range(rng.randint(1, 8)):
                buf[rng.randrange(len(buf))] = rng.randrange(256)
            target.write_bytes(bytes(buf))
        elif kind == "garbage":
            target.write_bytes(rng.randbytes(rng.randint(1, 300)))
        elif kind == "delete":
            target.unlink()
        elif kind == "empty":
            target.write_bytes(b"")
        elif kind in ("link_passwd", "link_devzero", "link_outside"):
            target.unlink()
            dest = {"link_passwd": Path("/etc/passwd"), "link_devzero": Path("/dev/zero"),
                    "link_outside": outside / "result.json"}[kind]
            target.symlink_to(dest)
        elif kind == "to_dir":
            target.unlink()
            target.mkdir()


@pytest.mark.parametrize("source, layout", TREES, ids=TREE_IDS)
@settings(max_examples=10, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_random_corruption_reads_or_raises_our_error(source: Path, layout: str, ops: list) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root, outside = Path(tmp) / "tree", Path(tmp) / "outside"
        shutil.copytree(source, root, symlinks=True)
        outside.mkdir()
        (outside / "result.json").write_text(json.dumps({"trial_name": "x", "task_name": "escaped"}))
        corrupt(root, outside, ops)
        exercise(layout, root)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                detected = detect_layout(root)
            except TrialbookError as exc:
                assert exc.path is not None
            else:
                exercise(detected, root)


# -- the damaged fixtures (EXPECTED facts) -----------------------------------------------------

DAMAGED_EXPECTED = json.loads((DAMAGED / "EXPECTED.json").read_text())
HARBOR_EXPECTED = json.loads((HARBOR / "EXPECTED.json").read_text())


def harbor_trials(agent: str) -> list[str]:
    """Trial dir names of the real Harbor job run by ``agent`` (names change when it is re-made)."""
    return sorted(t["trial_dir"] for t in HARBOR_EXPECTED["trials"] if t["agent"] == agent)


def test_running_job_and_truncated_events_jsonl() -> None:
    exp = DAMAGED_EXPECTED["pier_running"]
    truncated = DAMAGED.parent / "damaged" / exp["truncated_file"]
    assert not truncated.read_bytes().endswith(b"\n")
    with pytest.warns(UserWarning, match=r"line \d+ is truncated.*read up to the last full line") as record:
        jobs = open_source(DAMAGED / "pier_running")
    assert any(str(truncated) in str(w.message) for w in record)
    job = jobs[0]
    assert (job.status == "finished") is exp["job_finished"] and job.finished_at is None
    trials = {t.path.name: t for t in job.trials}
    running = trials[exp["running_trial"]]
    r = running.record
    assert r.status == "running" and r.outcome is None and "running" in r.reason
    assert r.extra["copilot"]["n_events"] == exp["complete_events_lines"]
    assert not r.extra["copilot"]["complete"]  # no session.shutdown yet: totals from usage events
    assert r.usage.prompt_tokens is not None and r.usage.n_llm_calls >= 1
    with pytest.warns(UserWarning, match="truncated"):
        traj = running.trajectory()  # no trajectory.json yet: built from the partial session log
    assert traj is not None and traj.steps[0].source == "user"
    done = trials[exp["finished_trial"]].record
    assert done.status == "finished" and done.outcome == Outcome.RESOLVED
    agg = aggregate(job.records, job=job.name)
    assert agg["n_trials"] == 1 and agg["outcomes"] == {"resolved": 1}  # the running trial is not scored


def test_truncated_last_line_of_a_copy(tmp_path: Path) -> None:
    root = tmp_path / "pier"
    shutil.copytree(PIER, root)
    log = next(root.rglob("fix-add__cp7Gx4d/agent/copilot-session/*/events.jsonl"))
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:-1]) + lines[-1][:25])  # session.shutdown cut mid-object
    with pytest.warns(UserWarning, match="truncated"):
        r = next(t for t in open_source(root)[0].trials if t.path.name == "fix-add__cp7Gx4d").record
    assert r.extra["copilot"]["n_events"] == len(lines) - 1 and not r.extra["copilot"]["complete"]
    assert (r.usage.prompt_tokens, r.usage.n_llm_calls) == (7312, 3)  # summed from assistant.usage
    # a malformed line that is not the last one is an error naming the file, kept as a problem
    log.write_bytes(lines[0] + b"{broken\n" + b"".join(lines[1:]))
    r = next(t for t in open_source(root)[0].trials if t.path.name == "fix-add__cp7Gx4d").record
    assert any(str(log) in p and "line 2" in p for p in r.extra["problems"])


def test_unknown_atif_version_is_a_clear_error_naming_the_file() -> None:
    exp = DAMAGED_EXPECTED["atif_bad_version"]
    job = open_source(DAMAGED / "atif_bad_version")[0]
    trial = next(t for t in job.trials if t.path.name == exp["trial"])
    assert trial.record.outcome == Outcome.RESOLVED  # listing does not need the trajectory
    path = trial.path / "agent" / "trajectory.json"
    assert json.loads(path.read_text())["schema_version"] == exp["schema_version"]
    original = HARBOR / "jobs" / job.name / exp["trial"] / "agent" / "trajectory.json"
    assert json.loads(original.read_text())["schema_version"] == exp["original_schema_version"]
    with pytest.raises(SourceError) as info:
        trial.trajectory()
    assert info.value.path == path and exp["schema_version"] in str(info.value)
    assert str(path) in str(info.value) and "unknown ATIF version" in str(info.value)


def test_trial_missing_result_is_infra_error_with_reason() -> None:
    exp = DAMAGED_EXPECTED["harbor_missing_result"]
    job = open_source(DAMAGED / "harbor_missing_result")[0]
    assert job.status == "finished"
    trials = {t.path.name: t.record for t in job.trials}
    assert set(trials) == {exp["trial_without_result"], exp["intact_trial"]}
    lost = trials[exp["trial_without_result"]]
    assert lost.outcome == Outcome.INFRA_ERROR and lost.status == "finished"
    assert "result.json missing" in lost.reason
    assert (lost.task, lost.agent, lost.model) == ("hello-file", "terminus-2", "openai/scripted")  # from config.json
    assert trials[exp["intact_trial"]].outcome == Outcome.RESOLVED


def test_trial_dir_with_no_files_is_listed(tmp_path: Path) -> None:
    root = tmp_path / "harbor"
    shutil.copytree(HARBOR, root)
    (root / "jobs" / "mixed-agents" / "hello-file__ghost").mkdir()
    name = harbor_trials("terminus-2")[0]
    corrupt_result = root / "jobs" / "mixed-agents" / name / "result.json"
    corrupt_result.write_text('{"trial_name": ')
    job = open_source(root)[0]
    recs = {t.path.name: t.record for t in job.trials}
    ghost = recs["hello-file__ghost"]
    assert ghost.outcome == Outcome.INFRA_ERROR and "config.json" in ghost.reason and ghost.task == "hello-file"
    broken = recs[name]
    assert broken.outcome == Outcome.INFRA_ERROR and "unreadable result.json" in broken.reason
    assert str(corrupt_result) in broken.reason and broken.agent == "terminus-2"  # config.json still read


# -- symlinks -----------------------------------------------------------------------------


def test_symlinks_leaving_the_tree_are_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "harbor"
    shutil.copytree(HARBOR, root)
    job_dir = root / "jobs" / "mixed-agents"
    nop, (t1, t2, t3, *_) = harbor_trials("nop")[0], harbor_trials("terminus-2")
    secret = tmp_path / "secret"
    shutil.copytree(job_dir / t1, secret)
    # a result.json pointing at /etc/passwd, a trajectory at /dev/zero (would never end if read)
    (job_dir / nop / "result.json").unlink()
    (job_dir / nop / "result.json").symlink_to("/etc/passwd")
    (job_dir / t2 / "agent" / "trajectory.json").unlink()
    (job_dir / t2 / "agent" / "trajectory.json").symlink_to("/dev/zero")
    # a whole trial dir that is a link out of the tree
    (job_dir / "hello-file__zzOutside").symlink_to(secret, target_is_directory=True)
    # a link that stays inside the tree is followed
    inner = job_dir / t3 / "agent" / "trajectory.json"
    inner.unlink()
    inner.symlink_to(Path("..") / ".." / t1 / "agent" / "trajectory.json")
    start = time.monotonic()
    with pytest.warns(UserWarning, match="hello-file__zzOutside: points outside the results tree"):
        job = open_source(root)[0]
    trials = {t.path.name: t for t in job.trials}
    assert "hello-file__zzOutside" not in trials
    passwd = trials[nop].record
    assert passwd.outcome == Outcome.INFRA_ERROR and "outside the results tree" in passwd.reason
    assert "root:" not in json.dumps(passwd.to_json_dict())
    with pytest.raises(SourceError, match="outside the results tree") as info:
        trials[t2].trajectory()
    assert info.value.path == job_dir / t2 / "agent" / "trajectory.json"
    assert trials[t3].trajectory() == trials[t1].trajectory()
    assert time.monotonic() - start < 10


def test_legacy_symlink_out_of_tree(tmp_path: Path) -> None:
    root = tmp_path / "legacy"
    shutil.copytree(LEGACY, root)
    metrics = next(root.rglob("gpt-5-default/hello-file/trials/001/metrics.json"))
    metrics.unlink()
    metrics.symlink_to("/etc/passwd")
    rec = next(r for r in open_source(root)[0].records if r.variant == "gpt-5-default"
               and r.task == "hello-file" and r.attempt == 1)
    assert rec.outcome == Outcome.INFRA_ERROR and "outside the results tree" in rec.reason


def test_safe_tree_basics(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    tree = SafeTree(tmp_path / "t")
    fifo = tmp_path / "t" / "pipe"
    os.mkfifo(fifo)
    assert not tree.is_file(fifo)
    with pytest.raises(SourceError, match="not a regular file"):
        tree.read_bytes(fifo)
    (tmp_path / "t" / "up").symlink_to(tmp_path, target_is_directory=True)
    assert not tree.inside(tmp_path / "t" / "up" / "anything") and tree.inside(tmp_path / "t" / "pipe")
    with pytest.raises(SourceError) as info:
        tree.read_json(tmp_path / "t" / "up" / "x.json")  # a parent dir link leaves the tree
    assert info.value.path == tmp_path / "t" / "up" / "x.json"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert SafeTree(tmp_path / "t", quiet=True).subdirs(tmp_path / "t") == []
    with pytest.warns(UserWarning, match="not followed"):
        assert tree.subdirs(tmp_path / "t") == []
