"""``trialbook sql`` as a user meets it: what to query, clear errors, and no runaway queries."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trialbook.index.reindex import RootSpec, reindex

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sql") / "index.db"
    reindex(path, [RootSpec(FIXTURES / "harbor" / "jobs")])
    return path


def sql(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "trialbook.cli.main", "sql", "--db", str(db), "--no-refresh",
                           *args], capture_output=True, text=True, timeout=60)


def test_tables_lists_tables_views_and_columns(db: Path) -> None:
    listed = json.loads(sql(db, "--tables", "--json").stdout)
    assert listed["all_trials"]["type"] == "table" and listed["pier_jobs"]["type"] == "view"
    # the Pier results format's legacy table names are views, with no trialbook table in the way
    assert {n: listed[n]["type"] for n in ("experiments", "runs", "variants", "tasks", "trials")} == dict.fromkeys(
        ("experiments", "runs", "variants", "tasks", "trials"), "view")
    assert "jobs" not in listed
    assert listed["all_jobs"]["columns"][:2] == ["job_name", "job_dir"]
    info = sql(db, "PRAGMA table_info(all_jobs)", "--json")
    assert info.returncode == 0 and json.loads(info.stdout)[0]["name"] == "job_name"


def test_columns_keep_the_query_order_in_json(db: Path) -> None:
    res = sql(db, "SELECT n_trials, layout, job_name FROM all_jobs", "--json")
    assert res.returncode == 0, res.stderr
    assert res.stdout.index('"n_trials"') < res.stdout.index('"layout"') < res.stdout.index('"job_name"')
    assert json.loads(res.stdout)[0]["job_name"] == "mixed-agents"


def test_unknown_column_lists_the_columns(db: Path) -> None:
    res = sql(db, "SELECT nope FROM all_jobs")
    assert res.returncode == 2
    assert "no such column: nope; columns of all_jobs: job_name, job_dir," in " ".join(res.stderr.split())


def test_runaway_queries_stop(db: Path) -> None:
    forever = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    started = time.monotonic()
    res = sql(db, forever, "--timeout", "1")
    assert res.returncode == 2 and "SQL query stopped after 1 s" in res.stderr
    assert time.monotonic() - started < 30
    many = sql(db, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c",
               "--max-rows", "5", "--json")
    assert many.returncode == 0 and [r["x"] for r in json.loads(many.stdout)] == [1, 2, 3, 4, 5]
    assert "only the first 5 rows" in many.stderr


def test_writes_and_setting_pragmas_are_still_refused(db: Path) -> None:
    assert "refused" in sql(db, "PRAGMA user_version = 3").stderr
    assert "refused" in sql(db, "DELETE FROM all_jobs").stderr


def test_huge_values_and_results_stop_cleanly(db: Path) -> None:
    res = sql(db, "SELECT randomblob(900000000)")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "SQL query stopped: it built a value over 16 MiB" in res.stderr
    doubling = "WITH RECURSIVE c(x) AS (SELECT 'a' UNION ALL SELECT x || x FROM c) SELECT length(x) FROM c"
    res = sql(db, doubling, "--json")
    assert res.returncode == 2 and "it built a value over 16 MiB" in json.loads(res.stderr)["error"]


def test_result_size_cap_keeps_the_first_rows() -> None:
    import sqlite3

    from trialbook.index.db import run_limited_query

    conn = sqlite3.connect(":memory:")
    rows = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x, randomblob(1000) FROM c"
    result = run_limited_query(conn, rows, max_rows=1000, max_bytes=10_000)
    assert len(result.rows) == 9 and [r[0] for r in result.rows] == list(range(1, 10))
    assert result.truncated is not None and "the result passed" in result.truncated
    exact = run_limited_query(conn, "SELECT 1 UNION ALL SELECT 2", max_rows=2)
    assert exact.rows == [(1,), (2,)] and exact.truncated is None


def test_blobs_and_markup_like_text_print_as_they_are(db: Path) -> None:
    query = "SELECT x'00ff' AS b, '[/bold] [red]x' AS t"
    res = sql(db, query, "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == [{"b": "X'00FF'", "t": "[/bold] [red]x"}]
    res = sql(db, query)
    assert res.returncode == 0, res.stderr
    assert "X'00FF'" in res.stdout and "[/bold] [red]x" in res.stdout
