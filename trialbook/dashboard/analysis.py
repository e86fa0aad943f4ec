"""The analysis page of a job: the files of its ``analysis/`` directory as tables and plots.

Job analysis writes nested JSON (failure and resolve distributions by axis, task tiers and
breakdowns, resolved-vs-unresolved score comparison, correlations, one row per instance).
Rather than hard-coding each schema, :func:`tables` walks a file and emits one table per
mapping whose values are records (``{row: {column: value}}``), and one key/value table per
level's plain values; lists of ids are shown by their length. So new fields appear on the
page without a code change. The failure categories per variant also get a stacked bar chart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trialbook.dashboard import charts
from trialbook.errors import SourceError
from trialbook.sources.safe import SafeTree

#: The analysis files shown, in page order, with their titles.
FILES: list[tuple[str, str]] = [
    ("report_failed.json", "Failure distributions"),
    ("report_resolved.json", "Resolve distributions"),
    ("report_task_analysis.json", "Task tiers and breakdowns"),
    ("traj_analysis/score_comparison.json", "Score comparison: resolved vs unresolved"),
    ("instance_analysis/correlations.json", "Correlations with success"),
    ("instance_analysis/summary.json", "Instances"),
]
MAX_TABLES = 80
MAX_ROWS = 1000


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, str | int | float | bool)


def _cell(v: Any) -> Any:
    """A value as one table cell: scalars as they are, id lists by length, small records inline."""
    if _scalar(v):
        return v
    if isinstance(v, list):
        if all(_scalar(x) for x in v) and len(v) <= 8:
            return ", ".join("null" if x is None else str(x) for x in v)
        return f"{len(v)} items"
    if isinstance(v, dict):
        parts = []
        for k, x in list(v.items())[:12]:
            inner = x.get("count", x.get("n")) if isinstance(x, dict) else x
            parts.append(f"{k}={_cell(inner) if _scalar(inner) else '…'}")
        return ", ".join(parts)
    return str(v)


def _is_records(d: dict[str, Any]) -> bool:
    vals = list(d.values())
    return bool(vals) and all(isinstance(v, dict) for v in vals) and \
        sum(_scalar(x) for v in vals for x in v.values()) >= len(vals)


def tables(obj: Any, title: str, out: list[dict[str, Any]]) -> None:
    """Append the tables of ``obj`` (see the module docstring) to ``out``."""
    if len(out) >= MAX_TABLES:
        return
    if isinstance(obj, list) and obj and all(isinstance(x, dict) for x in obj):
        cols = list(dict.fromkeys(k for x in obj[:MAX_ROWS] for k in x))
        out.append({"title": title, "columns": cols,
                    "rows": [[_cell(x.get(c)) for c in cols] for x in obj[:MAX_ROWS]], "n": len(obj)})
        return
    if not isinstance(obj, dict):
        return
    if _is_records(obj):
        cols = list(dict.fromkeys(k for v in obj.values() for k in v))
        rows = [[k, *(_cell(v.get(c)) for c in cols)] for k, v in list(obj.items())[:MAX_ROWS]]
        out.append({"title": title, "columns": ["", *cols], "rows": rows, "n": len(obj)})
        return
    plain = [(k, _cell(v)) for k, v in obj.items() if _scalar(v) or isinstance(v, list) and
             not (v and all(isinstance(x, dict) for x in v))]
    if plain:
        out.append({"title": title, "columns": ["field", "value"], "rows": [list(p) for p in plain], "n": len(plain)})
    for k, v in obj.items():
        if isinstance(v, dict) or isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            tables(v, f"{title} › {k}", out)


def failure_plot(report: dict[str, Any]) -> dict[str, Any] | None:
    """Stacked bars of failure categories per variant, from report_failed.json."""
    by_variant = ((report.get("by_axis") or {}).get("variant") or {})
    if not isinstance(by_variant, dict):
        return None
    cats = list(dict.fromkeys(c for v in by_variant.values() if isinstance(v, dict)
                              for c in (v.get("categories") or {})))
    names = list(by_variant)
    data = [{"type": "bar", "name": charts.plot_text(c), "x": [charts.plot_text(n) for n in names],
             "y": [((by_variant[n].get("categories") or {}).get(c) or {}).get("count", 0) for n in names]}
            for c in cats]
    if not data:
        return None
    return {"data": data, "layout": {"title": {"text": "Failure categories per variant"}, "barmode": "stack",
                                     "height": 320, "margin": {"l": 60, "r": 20, "t": 40, "b": 50}}}


def analysis_page(job_dir: Path, analysis_dir: Path, job: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(page data, files read) of a job's analysis directory."""
    tree = SafeTree(job_dir, quiet=True)
    sections, used, warnings = [], [], []
    plots = []
    for rel, title in FILES:
        path = analysis_dir / rel
        if not tree.is_file(path):
            continue
        used.append(str(path))
        try:
            data = tree.read_json(path)
        except SourceError as exc:
            warnings.append(str(exc))
            continue
        found: list[dict[str, Any]] = []
        tables(data, rel, found)
        sections.append({"title": title, "file": rel, "tables": found})
        if rel == "report_failed.json" and isinstance(data, dict):
            fig = failure_plot(data)
            if fig:
                plots.append(fig)
    return {"job": job, "sections": sections, "plots": plots, "warnings": warnings}, used
