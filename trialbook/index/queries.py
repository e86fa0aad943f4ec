"""Read-side queries of ``results/index.db``: job lists, one job's summary, trial lookups.

``summary_from_index`` builds summary.json from index rows through the same
:func:`trialbook.results.summary.build_summary` that reads files, so both give the same numbers.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from trialbook.model.outcome import Outcome
from trialbook.results.summary import JobInfo, TrialFacts, build_summary

#: Columns of ``trialbook list``.
JOB_COLUMNS = ("job_name", "layout", "status", "started_at", "finished_at", "n_trials",
               "success_rate", "n_errors", "experiment", "job_dir")


def list_jobs(conn: sqlite3.Connection, layout: str | None = None) -> list[dict[str, Any]]:
    """Every indexed job (newest first by started_at, then name), optionally of one layout."""
    where, params = ("WHERE layout = ?", (layout,)) if layout else ("", ())
    rows = conn.execute(
        f"SELECT {', '.join(JOB_COLUMNS)} FROM all_jobs {where}"
        " ORDER BY started_at IS NULL, started_at DESC, job_name", params).fetchall()
    return [dict(r) for r in rows]


def job_row(conn: sqlite3.Connection, name: str) -> sqlite3.Row | None:
    """The jobs row named ``name`` (exact), else the only one whose plain name (before ``@``) matches."""
    row = conn.execute("SELECT * FROM all_jobs WHERE job_name = ?", (name,)).fetchone()
    if row is not None:
        return row
    rows = conn.execute("SELECT * FROM all_jobs WHERE job_name LIKE ? ESCAPE '\\'",
                        (name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "@%",)
                        ).fetchall()
    return rows[0] if len(rows) == 1 else None


def last_job(conn: sqlite3.Connection, root: str | None = None) -> sqlite3.Row | None:
    """The most recently started job (optionally under ``root``); jobs without a start time come last."""
    where, params = ("WHERE root = ?", (root,)) if root else ("", ())
    return conn.execute(
        f"SELECT * FROM all_jobs {where} ORDER BY started_at IS NULL, started_at DESC, indexed_at DESC LIMIT 1",
        params).fetchone()


def _facts(row: sqlite3.Row) -> TrialFacts:
    outcome = row["outcome"]
    return TrialFacts(
        trial_name=row["trial_name"], task=row["task_slug"], variant=row["variant_slug"],
        agent=row["agent"], model=row["model"], attempt=row["attempt"],
        outcome=Outcome(outcome) if outcome else None, reward=row["reward"],
        n_turns=row["n_turns"], n_tool_calls=row["n_tool_calls"], total_tokens=row["total_tokens"],
        cost_usd=row["cost_usd"], aiu=row["aiu"], error=row["error"], duration_s=row["duration_s"],
    )


def summary_from_index(conn: sqlite3.Connection, job_name: str) -> dict[str, Any]:
    """summary.json of an indexed job, computed from its index rows (no file is read)."""
    job = conn.execute("SELECT * FROM all_jobs WHERE job_name = ?", (job_name,)).fetchone()
    if job is None:
        raise KeyError(job_name)
    info = JobInfo(job=job_name, job_dir=job["job_dir"], layout=job["layout"], run_id=job["run_id"],
                   experiment=job["experiment"], started_at=job["started_at"],
                   finished_at=job["finished_at"], status=job["status"])
    facts = [_facts(r) for r in conn.execute(
        "SELECT trial_name, task_slug, variant_slug, agent, model, attempt, outcome, reward, n_turns,"
        " n_tool_calls, total_tokens, cost_usd, aiu, error, duration_s FROM all_trials WHERE job_name = ?",
        (job_name,))]
    summary = build_summary(info, facts)
    summary["job"] = job_name
    return summary
