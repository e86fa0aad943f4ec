"""The jobs list and the page of one job, computed from ``results/index.db``.

Numbers come from :func:`trialbook.index.queries.summary_from_index`, the function that
writes ``summary.json``, so what the page shows equals that file. Ids are short hashes of
the job directory and the trial path: stable across builds, and made only of hex digits, so
they are safe in file names and URLs whatever the names on disk are.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections import Counter
from datetime import datetime
from typing import Any

from trialbook.dashboard import charts
from trialbook.index.queries import summary_from_index
from trialbook.model.outcome import ERROR_OUTCOMES

#: Columns of the compact trial rows a job page carries (one list per trial).
TRIAL_COLUMNS = ["id", "task", "variant", "attempt", "outcome", "reward", "duration_s", "total_tokens",
                 "cost_usd", "n_turns", "error", "name"]
_ERRORS = {str(o) for o in ERROR_OUTCOMES}


def job_id(job_dir: str) -> str:
    """The site id of a job (from its directory)."""
    return hashlib.sha1(job_dir.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def trial_id(trial_path: str) -> str:
    """The site id of a trial (from its path)."""
    return hashlib.sha1(trial_path.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _seconds(start: str | None, end: str | None) -> float | None:
    try:
        a = datetime.fromisoformat(str(start).replace("Z", "+00:00"))
        b = datetime.fromisoformat(str(end).replace("Z", "+00:00"))
    except ValueError:
        return None
    return round((b - a).total_seconds(), 3)


def error_type(outcome: str | None, error: str | None) -> str | None:
    """What an error trial is counted under: its exception type, else its outcome."""
    if outcome not in _ERRORS:
        return None
    head = (error or "").split(":", 1)[0].strip()
    return head if error and ":" in error and 0 < len(head) <= 80 and " " not in head else outcome


def _best_pass(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The highest pass@k_max over variants (with its k and variant), as the jobs list shows it."""
    k = str(summary.get("k_max") or 1)
    best = None
    for v in summary.get("variants") or []:
        p = (v.get("pass_at_k") or {}).get(k)
        if p is not None and (best is None or p > best["value"]):
            best = {"k": int(k), "value": p, "variant": v["variant"]}
    return best


def job_entry(row: sqlite3.Row, summary: dict[str, Any]) -> dict[str, Any]:
    """One row of the jobs page."""
    return {
        "id": job_id(row["job_dir"]), "name": row["job_name"], "layout": row["layout"],
        "status": summary.get("status"), "experiment": summary.get("experiment"),
        "started_at": summary.get("started_at"), "finished_at": summary.get("finished_at"),
        "duration_s": _seconds(summary.get("started_at"), summary.get("finished_at")),
        "n_trials": summary["n_trials"], "n_listed": summary["n_trials_listed"],
        "n_unfinished": summary["n_unfinished"], "failures": summary["failures"],
        "success_rate": summary["overall_success_rate"], "pass": _best_pass(summary),
        "cost_usd": summary.get("cost_usd"), "total_tokens": summary.get("total_tokens"),
        "n_variants": summary["n_variants"], "n_tasks": summary["n_tasks"],
        "variants": [v["variant"] for v in summary.get("variants") or []],
    }


def job_data(conn: sqlite3.Connection, row: sqlite3.Row) -> tuple[dict[str, Any], dict[str, Any], list[tuple]]:
    """(jobs-list entry, job page data, the job's trial rows from the index)."""
    summary = summary_from_index(conn, row["job_name"])
    summary.pop("generated_at", None)  # changes on every call: would rewrite an unchanged page
    entry = job_entry(row, summary)
    trials = conn.execute(
        "SELECT trial_path, task_slug, variant_slug, attempt, outcome, reward, duration_s, total_tokens,"
        " cost_usd, n_turns, error, trial_name FROM all_trials WHERE job_name = ?"
        " ORDER BY task_slug, variant_slug, attempt, trial_name", (row["job_name"],)).fetchall()
    errors = Counter(t for t in (error_type(r["outcome"], r["error"]) for r in trials) if t)
    variants = summary.get("variants") or []
    page = {
        **entry, "job_dir": row["job_dir"], "summary": summary,
        "trial_columns": TRIAL_COLUMNS,
        "trials": [[trial_id(r["trial_path"]), *tuple(r)[1:]] for r in trials],
        "errors_by_type": dict(sorted(errors.items())),
        "plots": {
            "pass_at_k": charts.pass_at_k(variants), "outcomes": charts.outcomes(variants),
            "errors": charts.errors_by_type(dict(errors)), "cost": charts.cost_vs_success(variants),
        },
        "has_analysis": summary.get("analysis_dir") is not None,
    }
    return entry, page, [tuple(r) for r in trials]
