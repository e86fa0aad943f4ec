"""``summary.md``: the content of ``summary.json`` as readable Markdown tables.

Pure rendering: every number printed here is read from the summary dict, nothing is
recomputed, so the two files can never disagree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def fmt(value: Any, *, pct: bool = False, digits: int = 3) -> str:
    """A cell: ``—`` for unknown, a percentage for rates, compact floats, thousands separators."""
    if value is None:
        return "—"
    if pct:
        return f"{100 * value:.1f}%"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if abs(value) >= 1e15:
            return f"{value:.{digits}g}"
        return f"{value:,.{digits}f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:,.0f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def md_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Lines of a GitHub-flavoured Markdown table."""
    out = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out


def _passk_cells(passk: dict[str, float | None], ks: list[str]) -> list[str]:
    return [fmt(passk.get(k), pct=True) for k in ks]


def render_summary_md(summary: dict[str, Any]) -> str:
    """Markdown for a summary dict built by :func:`trialbook.results.summary.build_summary`."""
    ks = [str(k) for k in range(1, int(summary.get("k_max") or 1) + 1)]
    lines = [f"# Summary of {summary.get('job')}", ""]
    head = [
        ("run_id", summary.get("run_id")), ("experiment", summary.get("experiment")),
        ("layout", summary.get("layout")), ("status", summary.get("status")),
        ("started_at", summary.get("started_at")), ("finished_at", summary.get("finished_at")),
        ("job_dir", f"`{summary.get('job_dir')}`"),
        ("analysis", f"`{summary['analysis_dir']}`" if summary.get("analysis_dir") else "not run"),
    ]
    lines += md_table(["field", "value"], [[k, fmt(v)] for k, v in head])
    lines += ["", "## Overall", ""]
    overall = [
        ("variants", summary.get("n_variants")), ("tasks", summary.get("n_tasks")),
        ("trials (counted)", summary.get("n_trials")), ("trials listed", summary.get("n_trials_listed")),
        ("failures (error outcomes)", summary.get("failures")),
        ("success rate", fmt(summary.get("overall_success_rate"), pct=True)),
        ("total tokens", summary.get("total_tokens")), ("cost (USD)", summary.get("cost_usd")),
        ("AIU (Copilot AI units)", summary.get("aiu")),
    ]
    lines += md_table(["measure", "value"], [[k, v if isinstance(v, str) else fmt(v)] for k, v in overall])
    lines += ["", f"Success rate counts {summary.get('success_rate_counts')}.", ""]
    findings = summary.get("baseline_findings") or []
    if findings:
        lines += ["## Baseline checks", "",
                  "The oracle must resolve every task and nop none; where they do not, the task itself "
                  "is suspect.", ""]
        lines += [f"- **{f['task']}**: {f['message']}" for f in findings]
        lines += [""]
    variants = summary.get("variants") or []
    lines += ["## Variants", ""]
    cols = ["variant", "agent", "model", "trials", "resolved", "success", "mean reward",
            *(f"pass@{k}" for k in ks), "errors", "tokens", "cost (USD)", "AIU", "turns", "tool calls"]
    rows = [[fmt(v["variant"]), fmt(v.get("agent")), fmt(v.get("model")), fmt(v["n_trials"]),
             fmt(v["n_success"]), fmt(v["success_rate"], pct=True), fmt(v["mean_reward"]),
             *_passk_cells(v["pass_at_k"], ks), fmt(v["n_errors"]), fmt(v.get("total_tokens")),
             fmt(v.get("cost_usd"), digits=4), fmt(v.get("aiu")), fmt(v.get("mean_turns"), digits=1),
             fmt(v.get("mean_tool_calls"), digits=1)] for v in variants]
    lines += md_table(cols, rows)
    lines += ["", "### Outcomes", ""]
    outcome_names = sorted({o for v in variants for o in v.get("outcomes", {})})
    lines += md_table(["variant", *outcome_names],
                      [[fmt(v["variant"]), *(fmt(v["outcomes"].get(o, 0)) for o in outcome_names)]
                       for v in variants])
    for v in variants:
        lines += ["", f"## Tasks of {fmt(v['variant'])}", ""]
        lines += md_table(
            ["task", "trials", "resolved", "success", "mean reward", *(f"pass@{k}" for k in ks)],
            [[fmt(t["task"]), fmt(t["n_trials"]), fmt(t["n_success"]), fmt(t["success_rate"], pct=True),
              fmt(t["mean_reward"]), *_passk_cells(t["pass_at_k"], ks)] for t in v.get("tasks", [])],
        )
    lines += ["", f"_Generated {summary.get('generated_at')} by trialbook from the job's files._", ""]
    return "\n".join(lines)
