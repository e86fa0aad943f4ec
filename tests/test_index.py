"""results/index.db: schema and views, incremental reindex, read-only sql, list, corruption and concurrency."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from summary_fixtures import hand_job

from trialbook.index import signatures
from trialbook.index.db import ReadOnlyQueryError, open_readonly, run_readonly_query
from trialbook.index.queries import summary_from_index
from trialbook.index.reindex import RootSpec, reindex
from trialbook.jsonio import read_json, write_json
from trialbook.results.summary import summarize_job
from trialbook.sources import open_source

FIXTURES = Path(__file__).parent / "fixtures"
PIER_JOBS = ["job_name", "job_dir", "started_at", "finished_at", "n_trials", "success_rate", "status"]
PIER_TRIALS = ["id", "job_name", "variant_slug", "task_slug", "trial_name", "success", "status", "n_turns",
               "n_tool_calls", "total_tokens", "aiu", "model", "error"]
TRIAL_COLUMNS = ["id", "job_name", "variant_slug", "task_slug", "trial_name", "attempt", "success", "outcome",
                 "reward", "n_turns", "n_tool_calls", "total_tokens", "cost_usd", "aiu", "model", "error", "duration_s"]
JOB_COLUMNS = ["job_name", "job_dir", "layout", "started_at", "finished_at", "n_trials", "success_rate", "status"]


def tb(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "trialbook.cli.main", *args], cwd=cwd, capture_output=True,
                          text=True, env=env)


def rows(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = open_readonly(db)
    try:
        return run_readonly_query(conn, sql, params)[1]
    finally:
        conn.close()


def columns(db: Path, table: str) -> list[str]:
    conn = open_readonly(db)
    try:
        return [d[0] for d in conn.execute(f"SELECT * FROM {table} LIMIT 0").description]
    finally:
        conn.close()


def test_schema_columns_and_pier_views(tmp_path: Path) -> None:
    db = tmp_path / "index.db"
    stats = reindex(db, [RootSpec(FIXTURES / "harbor" / "jobs"), RootSpec(FIXTURES / "pier_copilot" / "jobs")])
    assert (stats.jobs, stats.trials, stats.trials_read) == (2, 23, 23)
    assert columns(db, "all_jobs")[:8] == JOB_COLUMNS
    assert columns(db, "all_trials")[:17] == TRIAL_COLUMNS
    assert columns(db, "pier_jobs") == PIER_JOBS
    assert columns(db, "pier_trials") == PIER_TRIALS
    jobs = dict(rows(db, "SELECT job_name, n_trials FROM pier_jobs"))
    assert jobs == {"mixed-agents": 18, "copilot-demo": 5}
    cp = rows(db, "SELECT trial_name, success, status, n_tool_calls, aiu, error FROM pier_trials "
                  "WHERE job_name = 'copilot-demo' ORDER BY trial_name")
    exp = {t["trial_dir"]: t for t in json.loads((FIXTURES / "pier_copilot" / "EXPECTED.json").read_text())["trials"]}
    for name, success, status, n_tool_calls, aiu, error in cp:
        e = exp[name]
        assert (success, status) == (int(e["resolved"]), e["outcome"])
        assert n_tool_calls == e["n_tool_calls"]
        assert aiu == (None if e["total_nano_aiu"] is None else pytest.approx(e["total_nano_aiu"] * 1e-9))
        assert (error is not None) == (e["exception_type"] is not None)


def test_legacy_views(tmp_path: Path) -> None:
    db = tmp_path / "index.db"
    reindex(db, [RootSpec(FIXTURES / "legacy")])
    exp = json.loads((FIXTURES / "legacy" / "EXPECTED.json").read_text())["trials"]
    assert rows(db, "SELECT experiment, n_runs, n_trials FROM experiments") == [
        (exp[0]["experiment"], 1, len(exp))]
    assert rows(db, "SELECT count(*) FROM trials")[0][0] == len(exp)
    variants = dict(rows(db, "SELECT variant, n_success FROM variants"))
    assert variants == {v: sum(t["resolved"] for t in exp if t["variant"] == v) for v in variants}
    assert rows(db, "SELECT count(*) FROM runs")[0][0] == 1
    assert rows(db, "SELECT sum(n_trials) FROM tasks")[0][0] == len(exp)


def test_index_summary_equals_files_summary_every_layout(tmp_path: Path) -> None:
    db = tmp_path / "index.db"
    roots = [FIXTURES / "harbor" / "jobs", FIXTURES / "pier_copilot" / "jobs", FIXTURES / "velora" / "Trajectory_results",
             FIXTURES / "legacy", FIXTURES / "miniswe", FIXTURES / "openhands" / "outputs", FIXTURES / "swebench"]
    reindex(db, [RootSpec(r) for r in roots])
    conn = open_readonly(db)
    try:
        n = 0
        for root in roots:
            for job in open_source(root):
                name = conn.execute("SELECT job_name FROM all_jobs WHERE job_dir = ?", (str(job.path),)).fetchone()[0]
                a, b = summarize_job(job), summary_from_index(conn, name)
                a.pop("generated_at"), b.pop("generated_at")
                assert a == b, (root, job.name)
                n += 1
    finally:
        conn.close()
    assert n >= 9


@pytest.fixture(autouse=True)
def short_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 50 ms racy window (1 s in production, for coarse file-system clocks) keeps these tests fast."""
    monkeypatch.setattr(signatures, "RACY_MARGIN_NS", 50_000_000)


def _settle() -> None:
    """Wait past the racy window: files modified within it before a reindex are re-checked by the next one."""
    time.sleep(0.1)


def test_incremental_added_changed_deleted(tmp_path: Path) -> None:
    job = hand_job(tmp_path)
    db = tmp_path / "index.db"
    root = tmp_path / "artifacts" / "jobs"
    _settle()
    first = reindex(db, [RootSpec(root, "native")])
    assert (first.jobs_added, first.trials_read) == (1, 9)
    _settle()
    assert reindex(db, []).trials_read == 0  # the root is remembered; nothing changed
    # changed: t1 attempt 2 becomes resolved; added: a new trial; deleted: beta's running trial
    changed = job / "t1__alpha__2" / "trial.json"
    data = read_json(changed)
    data.update(outcome="resolved", reward=1.0)
    write_json(changed, data)
    added = read_json(job / "t1__alpha__1" / "trial.json")
    added.update(trial_name="t1__alpha__4", attempt=4, outcome="unresolved", reward=0.0)
    write_json(job / "t1__alpha__4" / "trial.json", added)
    shutil.rmtree(job / "t2__beta__1")
    _settle()
    second = reindex(db, [])
    assert (second.trials_read, second.trials_removed, second.jobs_updated) == (2, 1, 1)
    got = dict(rows(db, "SELECT trial_name, outcome FROM all_trials"))
    assert got["t1__alpha__2"] == "resolved" and got["t1__alpha__4"] == "unresolved" and "t2__beta__1" not in got
    assert rows(db, "SELECT n_trials, n_trials_listed FROM all_jobs") == [(8, 9)]
    _settle()
    assert reindex(db, []).trials_read == 0
    # a vanished job leaves the index
    shutil.rmtree(job)
    gone = reindex(db, [])
    assert (gone.jobs_removed, gone.jobs, gone.trials) == (1, 0, 0)
    assert rows(db, "SELECT count(*) FROM trial_sources")[0][0] == 0


def test_change_during_racy_window_is_not_lost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signatures, "RACY_MARGIN_NS", 1_000_000_000)  # the production window
    job = hand_job(tmp_path)
    db = tmp_path / "index.db"
    path = job / "t1__alpha__2" / "trial.json"
    path.write_text(path.read_text())  # written just before the reindex: its signature is stored as racy
    reindex(db, [RootSpec(job.parent, "native")])
    before = path.stat()
    text = path.read_text()
    assert '"reward": 0.0' in text
    path.write_text(text.replace('"reward": 0.0', '"reward": 1.0'))  # same size...
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # ...and same mtime: only "racy" catches it
    reindex(db, [])
    assert rows(db, "SELECT reward FROM all_trials WHERE trial_name = 't1__alpha__2'") == [(1.0,)]
    time.sleep(1.1)
    reindex(db, [])
    assert reindex(db, []).trials_read == 0


def test_incremental_in_a_nested_layout(tmp_path: Path) -> None:
    root = tmp_path / "Trajectory_results"
    shutil.copytree(FIXTURES / "velora" / "Trajectory_results", root)
    db = tmp_path / "index.db"
    _settle()
    first = reindex(db, [RootSpec(root)])
    rct = rows(db, "SELECT n_trials_listed FROM all_jobs WHERE job_name = 'RCT'")[0][0]
    instance = root / "RCT" / "1769880766122899"
    shutil.copytree(instance / "Claude", instance / "GPT")  # a new model dir two levels below the job
    shutil.rmtree(root / "SWE-hard" / "psf__requests_2.4.0_2.4.1" / "Gemini" / "Run3")
    _settle()
    second = reindex(db, [])
    assert (second.trials_read, second.trials_removed) == (3, 1)
    assert rows(db, "SELECT n_trials_listed FROM all_jobs WHERE job_name = 'RCT'") == [(rct + 3,)]
    assert second.trials == first.trials + 2
    _settle()
    assert reindex(db, []).trials_read == 0


def test_incremental_harbor_rereads_only_the_changed_trial(tmp_path: Path) -> None:
    root = tmp_path / "jobs"
    shutil.copytree(FIXTURES / "harbor" / "jobs", root)
    db = tmp_path / "index.db"
    _settle()
    reindex(db, [RootSpec(root)])
    query = "SELECT trial_name, variant_slug, attempt, outcome, reward, total_tokens FROM all_trials ORDER BY trial_name"
    before = rows(db, query)
    result = next(root.glob("mixed-agents/fix-add__*/result.json"))
    result.write_text(result.read_text())  # same content, new mtime
    _settle()
    stats = reindex(db, [])
    assert (stats.trials_read, stats.jobs_updated) == (1, 1)
    assert rows(db, query) == before  # variant and attempt of a partial read match the full read


def test_a_changed_harbor_trial_is_read_without_opening_its_siblings(tmp_path: Path, monkeypatch) -> None:
    """Variant and attempt numbering need every trial's identity: the index stores it, so touching
    one trial of a big job does not re-read the others (their files are never opened)."""
    import trialbook.sources.harbor as harbor

    root = tmp_path / "jobs"
    shutil.copytree(FIXTURES / "harbor" / "jobs", root)
    db = tmp_path / "index.db"
    _settle()
    reindex(db, [RootSpec(root)], workers=1)
    query = "SELECT trial_name, variant_slug, attempt, outcome, reward FROM all_trials ORDER BY trial_name"
    before = rows(db, query)

    def no_sibling_reads(*args: object, **kwargs: object) -> None:
        raise AssertionError("a sibling of the changed trial was read")

    monkeypatch.setattr(harbor, "identity_draft", no_sibling_reads)
    result = next(root.glob("mixed-agents/fix-add__*/result.json"))
    result.write_text(result.read_text())
    _settle()
    stats = reindex(db, [], workers=1)
    assert (stats.trials_read, stats.jobs_updated) == (1, 1)
    assert rows(db, query) == before


@pytest.mark.parametrize("workers", [1, 2])
def test_changed_harbor_trials_of_two_jobs_are_read_without_opening_their_siblings(tmp_path: Path, monkeypatch,
                                                                                     workers: int) -> None:
    """As above, with a changed trial in each of two jobs, read in this process or in worker
    processes (each partial read gets its job's stored identities)."""
    import trialbook.sources.harbor as harbor
    from trialbook.index import jobread

    monkeypatch.setattr(jobread, "PARALLEL_MIN_TRIALS", 1)

    root = tmp_path / "jobs"
    shutil.copytree(FIXTURES / "harbor" / "jobs", root)
    shutil.copytree(root / "mixed-agents", root / "mixed-agents-copy")  # two jobs: each read by a worker
    db = tmp_path / "index.db"
    _settle()
    reindex(db, [RootSpec(root)], workers=1)
    query = "SELECT trial_name, variant_slug, attempt, outcome, reward FROM all_trials ORDER BY trial_name"
    before = rows(db, query)

    def no_sibling_reads(*args: object, **kwargs: object) -> None:
        raise AssertionError("a sibling of the changed trial was read")

    monkeypatch.setattr(harbor, "identity_draft", no_sibling_reads)
    results = sorted(root.glob("*/*/result.json"))
    for result in (results[0], results[-1]):  # one trial in each of two jobs
        result.write_text(result.read_text())
    _settle()
    stats = reindex(db, [], workers=workers)
    assert (stats.trials_read, stats.jobs_updated) == (2, 2)
    assert rows(db, query) == before


def test_summary_written_beside_job_does_not_force_rereading(tmp_path: Path) -> None:
    job = hand_job(tmp_path)
    db = tmp_path / "index.db"
    _settle()
    reindex(db, [RootSpec(job.parent, "native")])
    (job / "summary.json").write_text("{}")
    again = reindex(db, [])
    assert (again.trials_read, again.jobs_unchanged) == (0, 1)


def test_full_rebuild_and_corrupt_index(tmp_path: Path) -> None:
    hand_job(tmp_path)
    db = tmp_path / "results" / "index.db"
    reindex(db, [RootSpec(tmp_path / "artifacts" / "jobs", "native")])
    assert reindex(db, [], full=True).trials_read == 0  # --full forgets remembered roots...
    full = reindex(db, [RootSpec(tmp_path / "artifacts" / "jobs", "native")], full=True)
    assert full.trials_read == 9  # ...and reads everything again
    for p in db.parent.glob("index.db*"):
        if not p.name.endswith(".lock"):
            p.unlink()
    db.write_bytes(b"this is not a database" * 100)
    with pytest.warns(UserWarning, match="rebuilding"):
        stats = reindex(db, [RootSpec(tmp_path / "artifacts" / "jobs", "native")])
    assert stats.rebuilt and stats.trials == 9
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]


def test_sql_is_read_only(tmp_path: Path) -> None:
    hand_job(tmp_path)
    db = tmp_path / "index.db"
    reindex(db, [RootSpec(tmp_path / "artifacts" / "jobs", "native")])
    conn = open_readonly(db)
    try:
        for stmt in ("DELETE FROM all_trials", "INSERT INTO all_jobs(job_name, job_dir, layout) VALUES ('x','y','z')",
                     "DROP TABLE all_trials", "UPDATE all_trials SET reward = 0", "PRAGMA query_only = OFF",
                     f"ATTACH DATABASE '{tmp_path / 'other.db'}' AS o", "CREATE TABLE t(x)"):
            with pytest.raises(ReadOnlyQueryError):
                run_readonly_query(conn, stmt)
        assert run_readonly_query(conn, "SELECT count(*) FROM all_trials")[1] == [(9,)]
    finally:
        conn.close()
    assert not (tmp_path / "other.db").exists()
    res = tb("sql", "DELETE FROM all_trials", "--db", str(db), "--no-refresh")
    assert res.returncode == 2 and "refused" in res.stderr
    ok = tb("sql", "SELECT task_slug, count(*) AS n FROM all_trials GROUP BY 1 ORDER BY 1", "--json", "--db", str(db))
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == [{"task_slug": "t1", "n": 5}, {"task_slug": "t2", "n": 4}]
    assert rows(db, "SELECT count(*) FROM all_trials") == [(9,)]


def test_block_cli_list_reindex_and_configured_roots(tmp_path: Path) -> None:
    block = tmp_path / "block"
    hand_job(block)
    harbor = tmp_path / "harbor-jobs"
    shutil.copytree(FIXTURES / "harbor" / "jobs", harbor)
    (block / "config.yaml").write_text(
        "kind: eval\nname: handblock\ntasks: {path: tasks}\nvariants: [{name: nop, agent: nop}]\n"
        "index:\n  roots: [../harbor-jobs]\n")
    res = tb("reindex", "--json", cwd=block)
    assert res.returncode == 0, res.stderr
    stats = json.loads(res.stdout)
    assert (stats["jobs"], stats["trials"]) == (2, 27)
    listed = json.loads(tb("list", "--json", cwd=block).stdout)
    assert {j["job_name"]: j["layout"] for j in listed} == {"handjob": "native", "mixed-agents": "harbor"}
    assert next(j for j in listed if j["job_name"] == "handjob")["n_trials"] == 7
    people = tb("list", cwd=block)
    assert people.returncode == 0 and "mixed-agents" in people.stdout
    # a name found only in the index: summarised from it; Harbor's tree is left untouched...
    shown = tb("show", "mixed-agents", "--json", cwd=block)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["n_trials"] == 18 and not (harbor / "mixed-agents" / "summary.json").exists()
    human = tb("show", "mixed-agents", cwd=block)
    assert "summary not written into this harbor tree" in " ".join(human.stdout.split())
    # ...unless asked: --write puts it beside that job
    assert tb("show", "mixed-agents", "--write", cwd=block).returncode == 0
    assert (harbor / "mixed-agents" / "summary.json").is_file()
    # a root that disappears takes its jobs out of the index
    shutil.rmtree(harbor)
    after = json.loads(tb("reindex", "--json", cwd=block).stdout)
    assert after["jobs"] == 1 and any("no longer exists" in w for w in after["warnings"])


def test_parallel_reading_gives_the_same_index(tmp_path: Path) -> None:
    for name in ("job-a", "job-b", "job-c"):
        hand_job(tmp_path, name)
    root = RootSpec(tmp_path / "artifacts" / "jobs", "native")
    parallel = reindex(tmp_path / "p.db", [root], workers=2)
    serial = reindex(tmp_path / "s.db", [root], workers=1)
    assert (parallel.jobs_added, parallel.trials_read) == (serial.jobs_added, serial.trials_read) == (3, 27)
    query = ("SELECT job_name, trial_name, outcome, reward, total_tokens, error, trial_path FROM all_trials "
             "ORDER BY job_name, trial_name")
    assert rows(tmp_path / "p.db", query) == rows(tmp_path / "s.db", query)
    sources = "SELECT job_name, path, files FROM trial_sources ORDER BY 1, 2"  # sig may be racy in one
    assert rows(tmp_path / "p.db", sources) == rows(tmp_path / "s.db", sources)


@pytest.mark.parametrize("layout", ["native", "harbor"])
def test_a_job_split_across_workers_gives_the_same_index(tmp_path: Path, monkeypatch, layout: str) -> None:
    """One big job read in parts by several processes (attempts and variants of Harbor trials
    depend on their siblings) gives the rows, order and sources a serial read gives."""
    from trialbook.index import jobread
    if layout == "native":
        hand_job(tmp_path, "job-a")
        root = RootSpec(tmp_path / "artifacts" / "jobs", "native")
    else:
        shutil.copytree(FIXTURES / "pier_copilot" / "jobs", tmp_path / "jobs")
        shutil.copytree(FIXTURES / "harbor" / "jobs", tmp_path / "jobs", dirs_exist_ok=True)
        root = RootSpec(tmp_path / "jobs", "harbor")
    monkeypatch.setattr(jobread, "PART_MIN_TRIALS", 1)
    monkeypatch.setattr(jobread, "PARALLEL_MIN_TRIALS", 1)
    plans_seen: list[int] = []
    split = jobread.split_plan
    monkeypatch.setattr(jobread, "split_plan", lambda plan, parts: plans_seen.append(parts) or split(plan, parts))
    serial = reindex(tmp_path / "s.db", [root], workers=1)
    parallel = reindex(tmp_path / "p.db", [root], workers=3)
    assert plans_seen and len(split(jobread.JobPlan(layout, str(root.path), str(next(
        p for p in sorted(root.path.iterdir()) if p.is_dir())), 0, 0, ""), 3)) > 1
    assert parallel.trials_read == serial.trials_read > 3
    query = "SELECT * FROM all_trials ORDER BY id"
    assert rows(tmp_path / "p.db", query) == rows(tmp_path / "s.db", query)
    sources = "SELECT job_name, path, files, identity FROM trial_sources ORDER BY 1, 2"
    assert rows(tmp_path / "p.db", sources) == rows(tmp_path / "s.db", sources)
    jobs = "SELECT job_name, n_trials, success_rate, n_errors, started_at, finished_at, status FROM all_jobs ORDER BY 1"
    assert rows(tmp_path / "p.db", jobs) == rows(tmp_path / "s.db", jobs)
    assert parallel.warnings == serial.warnings


#: A reindex in a fresh interpreter (no threads: the signature checks may fork) that compares
#: signatures in workers from the first trial on, noting the pid of each process that compares.
_REINDEX_IN_WORKERS = """
import json, os, sys
from pathlib import Path
from trialbook.index import signatures, sigcheck
from trialbook.index.reindex import reindex
signatures.RACY_MARGIN_NS = 50_000_000
sigcheck.PARALLEL_MIN_TRIALS, sigcheck.CHUNK_TRIALS = 1, 2
compare = sigcheck.changed_paths
def noting_pid(known):
    with open(sys.argv[2], "a") as fh:
        fh.write(f"{os.getpid()}\\n")
    return compare(known)
sigcheck.changed_paths = noting_pid
stats = reindex(Path(sys.argv[1]), [], workers=2)
print(json.dumps([os.getpid(), stats.trials_read, stats.trials_removed, stats.jobs_updated, stats.jobs_unchanged]))
"""


def _reindex_in_workers(db: Path, pids: Path) -> tuple[set[str], list[int]]:
    """(pids of the processes that compared signatures other than the reindexing one, its stats)."""
    pids.unlink(missing_ok=True)
    done = subprocess.run([sys.executable, "-c", _REINDEX_IN_WORKERS, str(db), str(pids)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    own, *stats = json.loads(done.stdout)
    compared = set(pids.read_text().split())
    assert compared, "no signature was compared"
    return compared - {str(own)}, stats


def test_signatures_compared_in_worker_processes_find_every_change(tmp_path: Path) -> None:
    """A warm reindex of many trials compares their signatures in forked workers while the
    next jobs are planned: the same changes are found as in one process, and nothing else."""
    for name in ("job-a", "job-b", "job-c"):
        hand_job(tmp_path, name)
    jobs = tmp_path / "artifacts" / "jobs"
    db = tmp_path / "index.db"
    _settle()
    assert reindex(db, [RootSpec(jobs, "native")], workers=1).trials_read == 27
    _settle()
    others, unchanged = _reindex_in_workers(db, tmp_path / "pids")
    assert others and unchanged == [0, 0, 0, 3]  # nothing read, every job unchanged
    changed = jobs / "job-a" / "t1__alpha__2" / "trial.json"
    data = read_json(changed)
    data.update(outcome="resolved", reward=1.0)
    write_json(changed, data)
    added = read_json(jobs / "job-b" / "t1__alpha__1" / "trial.json")
    added.update(trial_name="t1__alpha__4", attempt=4)
    write_json(jobs / "job-b" / "t1__alpha__4" / "trial.json", added)
    shutil.rmtree(jobs / "job-c" / "t2__beta__1")
    _settle()
    others, stats = _reindex_in_workers(db, tmp_path / "pids")
    assert others and stats == [2, 1, 3, 0]  # read: the changed and the added trial; one removed
    fresh = reindex(tmp_path / "fresh.db", [RootSpec(jobs, "native")], workers=1)
    assert fresh.trials == 27
    query = "SELECT job_name, trial_name, outcome, reward, attempt, trial_path FROM all_trials ORDER BY 1, 2"
    assert rows(db, query) == rows(tmp_path / "fresh.db", query)
    _settle()
    assert _reindex_in_workers(db, tmp_path / "pids")[1] == [0, 0, 0, 3]


def _reindex_worker(db: str, root: str) -> int:
    return reindex(Path(db), [RootSpec(Path(root))]).trials


def test_two_reindex_runs_at_once(tmp_path: Path) -> None:
    db = tmp_path / "index.db"
    roots = [FIXTURES / "harbor" / "jobs", FIXTURES / "legacy"]
    ctx = multiprocessing.get_context("spawn" if os.name != "posix" else "fork")
    with ctx.Pool(2) as pool:
        results = pool.starmap(_reindex_worker, [(str(db), str(roots[0])), (str(db), str(roots[1]))])
    assert max(results) == 26  # whichever ran second saw both roots
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]
    assert rows(db, "SELECT count(*) FROM all_trials") == [(26,)]
    assert rows(db, "SELECT count(DISTINCT job_dir) FROM all_jobs") == [(2,)]


def test_corrupt_index_is_rebuilt_by_list(tmp_path: Path) -> None:
    hand_job(tmp_path)
    (tmp_path / "config.yaml").write_text("kind: eval\nname: handblock\ntasks: {path: tasks}\n"
                                          "variants: [{name: nop, agent: nop}]\n")
    assert tb("reindex", cwd=tmp_path).returncode == 0
    db = tmp_path / "results" / "index.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.write_bytes(b"\0garbage" * 512)
    res = tb("list", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "rebuilding" in res.stderr and json.loads(res.stdout)[0]["job_name"] == "handjob"


def test_unchanged_job_only_when_a_refresh_would_change_nothing(tmp_path: Path) -> None:
    """The read-only check ``show`` makes before refreshing a job: it answers the job's name only
    when the stored signatures still hold, and None (refresh) for any change a refresh would see."""
    from trialbook.index.freshness import unchanged_job

    jobs = tmp_path / "jobs"
    shutil.copytree(FIXTURES / "harbor" / "jobs", jobs)
    old = time.time() - 30  # outside the racy window, as files written before the last reindex
    for p in [jobs, *jobs.rglob("*")]:
        os.utime(p, (old, old), follow_symlinks=False)
    db = tmp_path / "index.db"
    reindex(db, [RootSpec(jobs, "harbor")])
    job = next(p for p in sorted(jobs.iterdir()) if p.is_dir())
    name = unchanged_job(db, job)
    assert name == rows(db, "SELECT job_name FROM all_jobs WHERE job_dir = ?", (str(job),))[0][0]
    (job / "summary.json").write_text("{}")  # derived beside the job (the dir's mtime moves): still unchanged
    assert unchanged_job(db, job) == name
    (job / ".notes").write_text("x")  # a new job-level file of a Harbor job: refresh
    assert unchanged_job(db, job) is None
    (job / ".notes").unlink()
    assert unchanged_job(db, job) == name
    trial = next(p for p in sorted(job.iterdir()) if p.is_dir())
    result = trial / "result.json"
    before = result.read_bytes()
    result.write_bytes(before + b" ")  # a trial's record rewritten: refresh
    assert unchanged_job(db, job) is None
    result.write_bytes(before)
    os.utime(result, (old, old))
    assert unchanged_job(db, job) == name  # the same bytes and times again
    shutil.copytree(trial, job / "zz-new-trial")  # a new trial: refresh
    assert unchanged_job(db, job) is None
    assert unchanged_job(db, tmp_path) is None  # not an indexed job
    assert unchanged_job(tmp_path / "missing.db", job) is None


def test_block_settings_are_remembered_until_config_changes(tmp_path: Path) -> None:
    """The jobs dir and roots a block's config names are remembered (so ``show`` skips validating the
    config), and a changed config.yaml is read again."""
    import yaml
    from conftest import make_block

    from trialbook.index.locate import block_jobs_dir, block_roots
    from trialbook.layout.paths import BlockPaths

    root = make_block(tmp_path)
    block = BlockPaths(root)
    old = time.time() - 30
    os.utime(block.config, (old, old))
    assert block_jobs_dir(block) == (root / "artifacts" / "jobs").resolve()
    assert (root / ".trialbook" / "index-settings.json").is_file()
    assert block_jobs_dir(block) == (root / "artifacts" / "jobs").resolve()  # from the remembered settings
    config = yaml.safe_load(block.config.read_text())
    config.setdefault("runtime_info", {}).setdefault("output", {})["eval_results_dir"] = "artifacts/other"
    config["index"] = {"roots": ["../elsewhere"]}
    block.config.write_text(yaml.safe_dump(config))
    os.utime(block.config, (old + 1, old + 1))  # same size is possible: the mtime alone must tell
    assert block_jobs_dir(block) == (root / "artifacts" / "other").resolve()
    assert [r.path for r in block_roots(block)] == [(root / "artifacts" / "other").resolve(),
                                                    (root / ".." / "elsewhere").resolve()]
    block.config.write_text("kind: [not valid")
    with pytest.warns(UserWarning):
        assert block_jobs_dir(block) == block.jobs  # a broken config is reported, never remembered
