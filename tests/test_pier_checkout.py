"""The Pier repository workflow: a copilot-experiments checkout holding ``jobs/`` and ``results/``.

``reindex`` with no argument indexes both trees, ``analyze --last --trial 1`` works there at
once (no prior reindex), the legacy tables answer under the Pier results format's names, and
an index written by an older trialbook is migrated (its remembered roots kept), never a crash.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from trialbook.index.db import SCHEMA_VERSION

FIXTURES = Path(__file__).parent / "fixtures"


def tb(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "trialbook.cli.main", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def ok_json(res: subprocess.CompletedProcess[str]):
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copilot-experiments checkout: the Pier job layout under jobs/, legacy Python runs under results/."""
    root = tmp_path / "copilot-experiments"
    root.mkdir()
    shutil.copytree(FIXTURES / "pier_copilot" / "jobs", root / "jobs")
    shutil.copytree(FIXTURES / "legacy" / "results", root / "results")
    (root / "pyproject.toml").write_text("[project]\nname = 'copilot-experiments'\n")
    return root


def test_reindex_without_arguments_indexes_jobs_and_results(checkout: Path) -> None:
    stats = ok_json(tb("reindex", "--json", cwd=checkout))
    assert stats["db"] == str(checkout / "results" / "index.db")
    assert sorted(stats["roots"]) == [str(checkout / "jobs"), str(checkout / "results")]
    legacy = json.loads((FIXTURES / "legacy" / "EXPECTED.json").read_text())["trials"]
    pier = json.loads((FIXTURES / "pier_copilot" / "EXPECTED.json").read_text())["trials"]
    assert (stats["jobs"], stats["trials"]) == (2, len(legacy) + len(pier))

    def sql(query: str) -> list[dict]:
        return ok_json(tb("sql", query, "--json", "--no-refresh", cwd=checkout))

    # the Pier format's tables, by its names
    assert sql("SELECT job_name, n_trials FROM pier_jobs") == [{"job_name": "copilot-demo", "n_trials": len(pier)}]
    assert sql("SELECT count(*) AS n FROM pier_trials") == [{"n": len(pier)}]
    assert sql("SELECT experiment, n_runs FROM experiments") == [{"experiment": "copilot-baseline", "n_runs": 1}]
    assert sql("SELECT run_id, experiment FROM runs") == [
        {"run_id": "run_2025-11-03T10-00-00", "experiment": "copilot-baseline"}]
    assert sql("SELECT count(*) AS n, sum(success) AS ok FROM trials") == [
        {"n": len(legacy), "ok": sum(t["resolved"] for t in legacy)}]
    assert {r["variant"] for r in sql("SELECT variant FROM variants")} == {t["variant"] for t in legacy}
    assert {r["task"] for r in sql("SELECT DISTINCT task FROM tasks")} == {t["task"] for t in legacy}
    # and trialbook's own all-layout tables under theirs
    assert sql("SELECT layout, count(*) AS n FROM all_trials t JOIN all_jobs j USING (job_name) "
               "GROUP BY layout ORDER BY layout") == [{"layout": "harbor", "n": len(pier)},
                                                      {"layout": "legacy", "n": len(legacy)}]
    # a second run is incremental: nothing re-read
    again = ok_json(tb("reindex", "--json", cwd=checkout))
    assert (again["jobs_unchanged"], again["trials_read"]) == (2, 0)


def test_analyze_last_trial_1_works_straight_away(checkout: Path) -> None:
    assert not (checkout / "results" / "index.db").exists()
    report = ok_json(tb("analyze", "--last", "--trial", "1", "--json", cwd=checkout))
    # the last job is the most recently started of both trees: the Pier job (2026) over the legacy run (2025)
    by_path = ok_json(tb("analyze", str(checkout / "jobs" / "copilot-demo"), "--trial", "1", "--json", cwd=checkout))
    assert report["job"] == "copilot-demo" and report["number"] == 1
    assert report == by_path
    # the people's view too
    text = tb("analyze", "--last", "--trial", "1", cwd=checkout)
    assert text.returncode == 0 and "Trial 1" in text.stdout


def test_analyze_last_in_a_checkout_with_only_legacy_results(checkout: Path) -> None:
    shutil.rmtree(checkout / "jobs")
    report = ok_json(tb("analyze", "--last", "--trial", "1", "--json", cwd=checkout))
    assert report["job"] == "run_2025-11-03T10-00-00" and report["number"] == 1
    listing = ok_json(tb("analyze", "--last", "--json", cwd=checkout))
    legacy = json.loads((FIXTURES / "legacy" / "EXPECTED.json").read_text())["trials"]
    assert len(listing["trials"]) == len(legacy)


def _old_index(db: Path, root: Path) -> None:
    """An index as trialbook wrote it before the rename (schema 1: tables ``jobs``/``trials``)."""
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db)
    conn.executescript("""
        CREATE TABLE index_meta (key TEXT PRIMARY KEY, value TEXT);
        INSERT INTO index_meta VALUES ('schema_version', '1');
        CREATE TABLE roots (root TEXT PRIMARY KEY, layout TEXT NOT NULL, watch TEXT NOT NULL DEFAULT '[]',
                            indexed_at TEXT);
        CREATE TABLE jobs (job_name TEXT PRIMARY KEY, job_dir TEXT NOT NULL UNIQUE, layout TEXT NOT NULL);
        CREATE TABLE trials (id INTEGER PRIMARY KEY, job_name TEXT NOT NULL);
        CREATE VIEW legacy_trials AS SELECT * FROM trials;
    """)
    conn.execute("INSERT INTO roots(root, layout) VALUES (?, 'harbor')", (str(root),))
    conn.execute("INSERT INTO jobs VALUES ('mixed-agents', ?, 'harbor')", (str(root / "mixed-agents"),))
    conn.commit()
    conn.close()


@pytest.mark.parametrize("command", [["sql", "SELECT job_name FROM all_jobs", "--json"],
                                     ["sql", "SELECT job_name FROM all_jobs", "--json", "--no-refresh"],
                                     ["list", "--json"], ["reindex", "--json"]])
def test_index_of_an_older_version_is_migrated_keeping_its_roots(tmp_path: Path, command: list[str]) -> None:
    harbor = tmp_path / "harbor-jobs"
    shutil.copytree(FIXTURES / "harbor" / "jobs", harbor)
    here = tmp_path / "elsewhere"  # no jobs/ or results/ tree of its own: only the remembered root
    here.mkdir()
    db = here / "results" / "index.db"
    _old_index(db, harbor)
    res = tb(*command, cwd=here)
    assert res.returncode == 0, res.stderr
    assert "rebuilding it from the files" in res.stderr and "Traceback" not in res.stderr
    names = ok_json(tb("sql", "SELECT job_name FROM all_jobs", "--json", "--no-refresh", cwd=here))
    assert names == [{"job_name": "mixed-agents"}]
    version = sqlite3.connect(db).execute("SELECT value FROM index_meta WHERE key = 'schema_version'").fetchone()
    assert version == (SCHEMA_VERSION,)  # the current schema


def test_named_job_from_an_older_index_is_found_after_migration(tmp_path: Path) -> None:
    harbor = tmp_path / "harbor-jobs"
    shutil.copytree(FIXTURES / "harbor" / "jobs", harbor)
    here = tmp_path / "elsewhere"
    here.mkdir()
    _old_index(here / "results" / "index.db", harbor)
    report = ok_json(tb("analyze", "mixed-agents", "--trial", "2", "--json", cwd=here))
    assert report["job"] == "mixed-agents" and report["number"] == 2
