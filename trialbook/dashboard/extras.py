"""The block-level pages: SFT datasets (``lf.stats.json``) and run archives (``index.yaml``).

Both exist only for a block (a results tree of another harness has neither). The SFT page
shows, per dataset under ``artifacts/sft_data/<job>/``, what went in, what was kept and why
the rest was dropped, and the token, turn, tool-call and score distributions of what was
kept; the archives page lists the run history with the success rate per run.
"""

from __future__ import annotations

from typing import Any

from trialbook.archive.index import list_archives
from trialbook.dashboard import charts
from trialbook.errors import TrialbookError
from trialbook.layout.paths import BlockPaths
from trialbook.sources.safe import SafeTree

_DIST_KEYS = ("count", "total", "mean", "min", "p50", "p90", "max")


def _dist_rows(stats: dict[str, Any]) -> list[list[Any]]:
    """Rows (population, count, total, mean, min, p50, p90, max) of the distributions in lf.stats.json."""
    turns = stats.get("turns") or {}
    calls = stats.get("tool_calls") or {}
    dists = [("tokens per example", stats.get("tokens")), ("assistant turns", turns.get("assistant")),
             ("messages", turns.get("messages")), ("tool calls per example", calls.get("per_example"))]
    return [[name, *(d.get(k) for k in _DIST_KEYS)] for name, d in dists if isinstance(d, dict)]


def sft_dataset(name: str, stats: dict[str, Any]) -> dict[str, Any]:
    """One dataset's section of the SFT page."""
    traj = stats.get("trajectories") or {}
    dropped = traj.get("dropped") or {}
    scores = stats.get("scores") or {}
    score_counts = scores.get("values") or {f"{b['low']}–{b['high']}": b["count"]
                                            for b in scores.get("bins") or [] if isinstance(b, dict)}
    calls = stats.get("tool_calls") or {}
    return {
        "name": name, "tokenizer": (stats.get("tokens") or {}).get("tokenizer"),
        "rendering": (stats.get("tokens") or {}).get("rendering"),
        "in": traj.get("in"), "kept": traj.get("kept"),
        "dropped": {k: v for k, v in dropped.items() if v},
        "dropped_total": sum(v for v in dropped.values() if isinstance(v, int)),
        "distributions": {"columns": ["", *_DIST_KEYS], "rows": _dist_rows(stats)},
        "by_variant": [[k, v.get("in"), v.get("kept")] for k, v in (stats.get("by_variant") or {}).items()
                       if isinstance(v, dict)],
        "by_task": [[k, v.get("in"), v.get("kept")] for k, v in (stats.get("by_task") or {}).items()
                    if isinstance(v, dict)],
        "plots": [p for p in (
            charts.bars("Kept and dropped trajectories", {"kept": traj.get("kept") or 0, **dropped}, "", "trajectories"),
            charts.bars("Tool calls by name (kept examples)", dict(list((calls.get("by_name") or {}).items())[:30])),
            charts.bars("Scores of kept examples", score_counts, "score", "examples"),
        ) if p],
    }


def sft_page(block: BlockPaths | None) -> tuple[dict[str, Any], list[str]]:
    """(SFT page data, files read): every ``artifacts/sft_data/<job>/lf.stats.json`` of the block."""
    if block is None or not block.sft_data.is_dir():
        return {"datasets": [], "warnings": []}, []
    tree = SafeTree(block.sft_data, quiet=True)
    datasets, used, warnings = [], [], []
    for d in tree.subdirs(block.sft_data):
        path = d / "lf.stats.json"
        if not tree.is_file(path):
            continue
        used.append(str(path))
        try:
            datasets.append(sft_dataset(d.name, tree.read_json_object(path)))
        except TrialbookError as exc:
            warnings.append(str(exc))
    return {"datasets": datasets, "warnings": warnings}, used


def archives_page(block: BlockPaths | None) -> tuple[dict[str, Any], list[str]]:
    """(archives page data, files read): the block's run history, orphans and gaps included."""
    if block is None:
        return {"runs": [], "warnings": []}, []
    try:
        listing = list_archives(block)
    except TrialbookError as exc:
        return {"runs": [], "warnings": [str(exc)]}, [str(block.archive_index)]
    rows = []
    for e in listing.entries:
        res = e.get("results") or {}
        rows.append({
            "number": e.get("number"), "archive": e.get("archive"), "run_id": e.get("run_id"),
            "job": e.get("job"), "kind": e.get("kind"), "status": e.get("status"), "trigger": e.get("trigger"),
            "started_at": e.get("started_at"), "finished_at": e.get("finished_at"),
            "n_trials": res.get("n_trials"), "n_resolved": res.get("n_resolved"), "n_errors": res.get("n_errors"),
            "success_rate": res.get("success_rate"), "present": e.get("present", True), "orphan": e.get("orphan", False),
            "variants": {str(k): v.get("success_rate") for k, v in (res.get("variants") or {}).items()
                         if isinstance(v, dict)},
        })
    return ({"runs": rows, "warnings": listing.warnings, "plot": charts.history(listing.entries)},
            [str(block.archive_index), str(block.archives)])
