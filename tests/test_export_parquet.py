"""``trialbook export --format parquet`` as users meet it: tables DuckDB, Polars and pandas load
with no glue, that answer the same queries as ``trialbook sql`` on the index, written a row
group at a time, and never over an earlier export without --force."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import duckdb
import orjson
import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest
from dashboard_trees import job_config, trajectory, trial_json
from typer.testing import CliRunner

from trialbook.cli.main import app
from trialbook.errors import TrialbookError
from trialbook.exports.parquet import ExportExistsError, export_parquet
from trialbook.exports.parquet_tables import TABLES
from trialbook.model.trajectory import load_trajectory

FIXTURES = Path(__file__).parent / "fixtures"
ROOTS = [FIXTURES / "native" / "jobs", FIXTURES / "harbor" / "jobs", FIXTURES / "velora" / "Trajectory_results"]
DOC_TYPES = {"string": "string", "int64": "int64", "double": "double", "bool": "bool",
             "timestamp[us]": "timestamp (UTC, µs)", "map<string, double>": "map<string, double>"}
DOCS = Path(__file__).resolve().parents[1] / "docs" / "exports.md"


def cli(*args: str | Path) -> SimpleNamespace:
    """A trialbook command in this process, exit codes as ``main`` gives them."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    if isinstance(result.exception, TrialbookError):
        return SimpleNamespace(returncode=int(result.exception.exit_code), stdout="", stderr=str(result.exception))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return SimpleNamespace(returncode=result.exit_code, stdout=result.stdout, stderr=result.stderr)


def _log_line(seq: int, step: int, status: str, **extra: object) -> bytes:
    line = {"schema": "trialbook.litellm-line/1", "trial_id": "logged/t1", "seq": seq, "step": step,
            "status": status, "model": "openai/gpt-4o-mini", "provider": "openai",
            "messages": [{"role": "user", "content": "go"}] * seq, "start_time": "2026-01-01T10:00:01.000Z",
            "end_time": "2026-01-01T10:00:02.500Z", "duration_s": 1.5, **extra}
    return orjson.dumps(line) + b"\n"


def write_logged_job(root: Path) -> Path:
    """A native job whose trial keeps a LiteLLM log (a failure, then its retry, then one more call)
    beside a trajectory of many steps, and a second trial whose trajectory is broken."""
    job = root / "logged"
    job_config(job)
    steps = [{"source": "user", "message": "fix it"}]
    for i in range(30):
        steps.append({"source": "agent", "message": f"step {i}", "timestamp": "2026-01-01T10:00:03Z",
                      "tool_calls": [{"tool_call_id": f"c{i}", "function_name": "bash",
                                      "arguments": {"command": f"echo {i}", "n": i}}],
                      "observation": {"results": [{"source_call_id": f"c{i}", "content": f"out {i}"}]},
                      "metrics": {"prompt_tokens": 100 + i, "completion_tokens": 10}})
    t1 = job / "t1"
    t1.mkdir()
    (t1 / "trial.json").write_bytes(orjson.dumps(trial_json("logged", "t1", "task-a", "v1", 1, "resolved")))
    (t1 / "agent").mkdir()
    (t1 / "agent" / "trajectory.json").write_bytes(orjson.dumps(trajectory(steps)))
    (t1 / "agent" / "litellm-trajectory.jsonl").write_bytes(
        _log_line(2, 1, "success", usage={"prompt_tokens": 50, "completion_tokens": 5, "total_tokens": 55},
                  cost_usd=0.25, response={"content": "ok", "finish_reason": "tool_calls",
                                           "tool_calls": [{"id": "c0", "function": {"name": "bash", "arguments": "{}"}}]})
        + _log_line(1, 1, "failure", error={"type": "InternalServerError", "message": "boom", "status_code": 500})
        + _log_line(3, 2, "success", usage={"prompt_tokens": 70, "completion_tokens": 7, "total_tokens": 77}))
    t2 = job / "t2"
    (t2 / "agent").mkdir(parents=True)
    (t2 / "trial.json").write_bytes(orjson.dumps(trial_json("logged", "t2", "task-b", "v1", 1, "unresolved")))
    (t2 / "agent" / "trajectory.json").write_text('{"schema_version": "ATIF-v1.6", "steps": "not a list"}')
    return job


def add_copies(job: Path, names: list[str]) -> None:
    """More trials like t1 (same trajectory and log) under other names."""
    for name in names:
        shutil.copytree(job / "t1", job / name)
        record = orjson.loads((job / name / "trial.json").read_bytes())
        (job / name / "trial.json").write_bytes(orjson.dumps({**record, "trial_name": name}))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pq") / "tables"
    done = cli("export", "--format", "parquet", *ROOTS, "--out", out, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["out_dir"] == str(out)
    return out


def test_duckdb_on_the_parquet_answers_as_trialbook_sql_on_the_index(exported: Path, tmp_path: Path) -> None:
    db = tmp_path / "index.db"
    assert cli("reindex", *ROOTS, "--db", db, "--json").returncode == 0
    queries = [
        "SELECT job_name, variant_slug, COUNT(*) AS n, SUM(success) AS n_success, AVG(success) AS success_rate,"
        " SUM(outcome = 'verifier_error') AS n_verifier_errors FROM all_trials"
        " GROUP BY job_name, variant_slug ORDER BY job_name, variant_slug",
        "SELECT outcome, COUNT(*) AS n, SUM(total_tokens) AS tokens FROM all_trials GROUP BY outcome ORDER BY outcome",
        "SELECT job_name, task_slug, trial_name, attempt, reward, model, error, trial_path FROM all_trials"
        " ORDER BY job_name, trial_name",
    ]
    con = duckdb.connect()
    con.execute(f"CREATE VIEW all_trials AS SELECT * FROM read_parquet('{exported}/trials/**/*.parquet')")
    for query in queries:
        done = cli("sql", "--db", db, "--no-refresh", "--json", query)
        assert done.returncode == 0, done.stderr
        from_index = json.loads(done.stdout)
        cur = con.execute(query)
        names = [d[0] for d in cur.description]
        from_parquet = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        assert _same(from_parquet, from_index), query
    assert len(from_index) == 38  # every trial of the three layouts, none lost


def _same(a: list[dict], b: list[dict]) -> bool:
    """Rows equal, floats to 1e-12 (SQLite and DuckDB may sum in another order)."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x.keys() != y.keys():
            return False
        for k in x:
            if isinstance(x[k], float) or isinstance(y[k], float):
                if x[k] is None or y[k] is None or abs(x[k] - y[k]) > 1e-12:
                    return False
            elif x[k] != y[k]:
                return False
    return True


def test_duckdb_polars_pandas_load_every_table_with_no_glue(exported: Path) -> None:
    manifest = json.loads((exported / "export.json").read_text())
    assert {j["layout"] for j in manifest["jobs"]} == {"native", "harbor", "velora"}
    for table, columns in TABLES.items():
        documented = [c.name for c in columns]
        n = manifest["rows"][table]
        assert n > 0, table
        by_duckdb = duckdb.sql(f"SELECT * FROM '{exported}/{table}/**/*.parquet'")
        assert by_duckdb.columns == [*documented, "job"] and len(by_duckdb.fetchall()) == n
        by_polars = pl.read_parquet(exported / table)
        assert by_polars.columns == [*documented, "job"] and by_polars.height == n
        assert pl.scan_parquet(f"{exported}/{table}/**/*.parquet").collect().height == n
        by_pandas = pd.read_parquet(exported / table)
        assert list(by_pandas.columns) == [*documented, "job"] and len(by_pandas) == n
        assert sorted(by_pandas["job"].astype(str).unique()) == sorted(by_pandas["job_name"].unique())


def test_steps_and_tool_calls_are_the_trajectory(exported: Path) -> None:
    trial = FIXTURES / "velora" / "Trajectory_results" / "RCT"
    row = duckdb.sql(f"SELECT trial_path, trial_name, n_steps FROM '{exported}/trials/**/*.parquet'"
                     f" WHERE job_name = 'RCT' ORDER BY trial_name LIMIT 1").fetchone()
    assert row is not None and row[0].startswith(str(trial))
    steps = pl.read_parquet(exported / "steps").filter((pl.col("job_name") == "RCT") & (pl.col("trial_name") == row[1]))
    assert steps.height == row[2] and steps["step_id"].to_list() == list(range(1, row[2] + 1))
    calls = pl.read_parquet(exported / "tool_calls").filter(pl.col("job_name") == "mixed-agents").sort(
        "trial_name", "step_id", "call_index")
    first = calls.row(0, named=True)
    harbor_trial = FIXTURES / "harbor" / "jobs" / "mixed-agents" / first["trial_name"]
    traj = load_trajectory(harbor_trial / "agent" / "trajectory.json")
    step = traj.steps[first["step_id"] - 1]
    call = step.tool_calls[first["call_index"]]
    assert (first["function_name"], json.loads(first["arguments"])) == (call.function_name, call.arguments)
    answer = next(r for r in step.observation.results if r.source_call_id == call.tool_call_id)
    assert first["output"] == answer.content


def test_llm_calls_come_from_the_litellm_log_in_call_order(tmp_path: Path) -> None:
    root = tmp_path / "jobs"
    add_copies(write_logged_job(root), ["t3", "t4"])
    out = tmp_path / "out"
    result = export_parquet([(root, "native")], out, row_group_rows=40)
    con = duckdb.connect()
    rows = con.execute(f"SELECT seq, step, origin, status, prompt_tokens, cost_usd, error_type, status_code,"
                       f" n_messages, n_response_tool_calls, duration_s FROM '{out}/llm_calls/**/*.parquet'"
                       " WHERE trial_name = 't1' ORDER BY seq").fetchall()
    assert rows == [(1, 1, "litellm_log", "failure", None, None, "InternalServerError", 500, 1, None, 1.5),
                    (2, 1, "litellm_log", "success", 50, 0.25, None, None, 2, 1, 1.5),
                    (3, 2, "litellm_log", "success", 70, None, None, None, 3, None, 1.5)]
    # the trial with a broken trajectory keeps its row, says why, and the export goes on
    broken = con.execute(f"SELECT outcome, n_steps, trajectory_error FROM '{out}/trials/**/*.parquet'"
                         " WHERE trial_name = 't2'").fetchone()
    assert broken[0] == "unresolved" and broken[1] is None and "invalid ATIF trajectory" in broken[2]
    assert any("t2" in w and "trajectory not exported" in w for w in result.warnings)
    # 3 x 31 steps with a limit of 40 rows: written as the trials were read (31 + 31, then 31 at the
    # end), not built whole; the 9 llm_calls rows stayed under the limit: one group
    steps_file = pq.ParquetFile(out / "steps" / "job=logged" / "part-0.parquet")
    assert steps_file.metadata.num_rows == 93 and steps_file.num_row_groups == 2
    assert [steps_file.metadata.row_group(i).num_rows for i in range(2)] == [62, 31]
    assert pq.ParquetFile(out / "llm_calls" / "job=logged" / "part-0.parquet").num_row_groups == 1
    args = con.execute(f"SELECT arguments->>'$.command', CAST(arguments->>'$.n' AS INT) FROM"
                       f" '{out}/tool_calls/**/*.parquet' WHERE trial_name = 't1' ORDER BY step_id").fetchall()
    assert args[:2] == [("echo 0", 0), ("echo 1", 1)] and len(args) == 30


def test_an_earlier_export_is_replaced_only_with_force(tmp_path: Path) -> None:
    root = tmp_path / "jobs"
    write_logged_job(root)
    out = tmp_path / "out"
    export_parquet([(root, None)], out)
    before = (out / "trials" / "job=logged" / "part-0.parquet").read_bytes()
    with pytest.raises(ExportExistsError):
        export_parquet([(root, None)], out)
    again = cli("export", "--format", "parquet", root, "--out", out)
    assert again.returncode == 4 and "--force" in again.stderr
    assert (out / "trials" / "job=logged" / "part-0.parquet").read_bytes() == before
    (root / "logged" / "t2").rename(root / "logged" / "t3-renamed")
    forced = cli("export", "--format", "parquet", root, "--out", out, "--force", "--json")
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["rows"]["trials"] == 2
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "llm_calls", "steps", "tool_calls", "trials"]


def test_partition_names_are_safe_and_job_name_is_exact(tmp_path: Path) -> None:
    root = tmp_path / "jobs"
    job = write_logged_job(root)
    odd = root / "run 1=a%b"
    job.rename(odd)
    out = tmp_path / "out"
    export_parquet([(root, None)], out)
    assert [p.name for p in (out / "trials").iterdir()] == ["job=run%201%3Da%25b"]
    assert set(pl.read_parquet(out / "trials")["job_name"]) == {"run 1=a%b"}


def test_docs_list_every_column_with_its_type() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for table, columns in TABLES.items():
        section = text.split(f"### `{table}`", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
        documented = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", section, flags=re.M)
        assert [name for name, _ in documented] == [c.name for c in columns], table
        for (_, kind), column in zip(documented, columns, strict=True):
            assert kind.strip() == DOC_TYPES[str(column.type)], column.name


def test_without_roots_the_blocks_jobs_go_to_results_parquet(tmp_path: Path) -> None:
    block = tmp_path / "block"
    write_logged_job(block / "artifacts" / "jobs")
    (block / "config.yaml").write_text("kind: eval\nname: b\ntasks: {path: tasks}\nvariants: [{name: nop, agent: nop}]\n")
    done = cli("export", "--format", "parquet", "--block", block, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["out_dir"] == str(block / "results" / "parquet")
    assert duckdb.sql(f"SELECT count(*) FROM '{block}/results/parquet/trials/**/*.parquet'").fetchone() == (2,)
