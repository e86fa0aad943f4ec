"""Plotly figure specs (``{"data": [...], "layout": {...}}``) for every plot of the site.

The page hands these to ``Plotly.newPlot`` unchanged; nothing draws a chart by hand. Plotly
reads a few HTML-like tags (``<b>``, ``<a href>``, ``<br>``) in its text and turns entities
into characters *after* splitting on tags, so every untrusted string that reaches a figure
(task, variant and job names, error types) goes through :func:`plot_text`, which writes
``<``, ``>`` and ``&`` as entities: they are shown literally and never parsed as tags.
"""

from __future__ import annotations

from typing import Any

#: Colours of the outcome taxonomy, shared with the page's CSS classes.
OUTCOME_COLORS = {
    "resolved": "#2e9d4f", "unresolved": "#c8553d", "agent_error": "#8e5ccf",
    "timeout": "#e0a21b", "verifier_error": "#d6457b", "infra_error": "#6b7a8f",
    "cancelled": "#b0b0b0", "running": "#4a90d9",
}
OUTCOME_ORDER = list(OUTCOME_COLORS)


def plot_text(value: Any) -> str:
    """An untrusted string made inert for plotly's text rendering (see module docstring)."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "title": {"text": title, "font": {"size": 14}}, "margin": {"l": 60, "r": 20, "t": 40, "b": 50},
        "height": 320, "legend": {"orientation": "h", "y": -0.25},
    }
    base.update(extra)
    return base


def pass_at_k(variants: list[dict[str, Any]]) -> dict[str, Any] | None:
    """pass@k against k, one line per variant (undefined points left out)."""
    data = []
    for v in variants:
        pts = [(int(k), p) for k, p in (v.get("pass_at_k") or {}).items() if p is not None]
        if pts:
            pts.sort()
            data.append({"type": "scatter", "mode": "lines+markers", "name": plot_text(v["variant"]),
                         "x": [k for k, _ in pts], "y": [p for _, p in pts]})
    if not data:
        return None
    return {"data": data, "layout": _layout("pass@k", xaxis={"title": {"text": "k"}, "dtick": 1},
                                            yaxis={"title": {"text": "pass@k"}, "range": [0, 1.05]})}


def outcomes(variants: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Stacked bars: trials per outcome, per variant."""
    names = [plot_text(v["variant"]) for v in variants]
    data = []
    for outcome in OUTCOME_ORDER:
        ys = [(v.get("outcomes") or {}).get(outcome, 0) for v in variants]
        if any(ys):
            data.append({"type": "bar", "name": outcome, "x": names, "y": ys,
                         "marker": {"color": OUTCOME_COLORS[outcome]}})
    if not data:
        return None
    return {"data": data, "layout": _layout("Outcomes per variant", barmode="stack",
                                            yaxis={"title": {"text": "trials"}})}


def errors_by_type(counts: dict[str, int]) -> dict[str, Any] | None:
    """Bars: error trials per error type (exception type, else the outcome)."""
    if not counts:
        return None
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:30]
    return {"data": [{"type": "bar", "x": [plot_text(k) for k, _ in items], "y": [n for _, n in items],
                      "marker": {"color": OUTCOME_COLORS["agent_error"]}}],
            "layout": _layout("Errors by type", yaxis={"title": {"text": "trials"}})}


def cost_vs_success(variants: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Scatter: each variant's success rate against its mean cost per trial (tokens when no cost)."""
    key, label = "cost_usd", "mean cost per trial (USD)"
    if not any(v.get("cost_usd") for v in variants):
        key, label = "total_tokens", "mean tokens per trial"
    pts = [v for v in variants if v.get(key) is not None and v.get("n_trials") and v.get("success_rate") is not None]
    if not pts:
        return None
    return {"data": [{"type": "scatter", "mode": "markers+text", "textposition": "top center",
                      "x": [v[key] / v["n_trials"] for v in pts], "y": [v["success_rate"] for v in pts],
                      "text": [plot_text(v["variant"]) for v in pts], "marker": {"size": 12}}],
            "layout": _layout("Cost vs success", xaxis={"title": {"text": label}},
                              yaxis={"title": {"text": "success rate"}, "range": [0, 1.05]})}


def timeline(phases: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Horizontal bars: each phase of a trial from its start offset, for its duration."""
    rows = [p for p in phases if p.get("offset_s") is not None and p.get("duration_s") is not None]
    if not rows:
        return None
    return {"data": [{"type": "bar", "orientation": "h", "y": [plot_text(p["phase"]) for p in rows],
                      "x": [p["duration_s"] for p in rows], "base": [p["offset_s"] for p in rows],
                      "marker": {"color": "#4a90d9"}}],
            "layout": _layout("Timeline (seconds from the trial's start)", height=60 + 40 * len(rows),
                              yaxis={"autorange": "reversed", "automargin": True}, xaxis={"title": {"text": "s"}})}


def step_tokens(steps: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Bars: prompt and completion tokens of each agent step that reports them."""
    rows = [s for s in steps if s.get("m") and (s["m"].get("prompt") or s["m"].get("completion"))]
    if not rows:
        return None
    ids = [s["id"] for s in rows]
    return {"data": [
        {"type": "bar", "name": "prompt", "x": ids, "y": [s["m"].get("prompt") or 0 for s in rows]},
        {"type": "bar", "name": "completion", "x": ids, "y": [s["m"].get("completion") or 0 for s in rows]},
    ], "layout": _layout("Tokens per step", barmode="group", xaxis={"title": {"text": "step"}})}


def bars(title: str, counts: dict[str, Any], xlabel: str = "", ylabel: str = "") -> dict[str, Any] | None:
    """Plain bars of ``{label: number}`` (SFT distributions, drop reasons)."""
    items = [(k, v) for k, v in counts.items() if isinstance(v, int | float)]
    if not items:
        return None
    return {"data": [{"type": "bar", "x": [plot_text(k) for k, _ in items], "y": [v for _, v in items]}],
            "layout": _layout(title, xaxis={"title": {"text": xlabel}, "type": "category"},
                              yaxis={"title": {"text": ylabel}})}


def history(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Success rate per archived run, one line per variant and one for the whole job."""
    series: dict[str, list[tuple[int, float]]] = {}
    for run in runs:
        results = run.get("results") or {}
        if results.get("success_rate") is not None:
            series.setdefault("all variants", []).append((run["number"], results["success_rate"]))
        for name, v in (results.get("variants") or {}).items():
            if isinstance(v, dict) and v.get("success_rate") is not None:
                series.setdefault(str(name), []).append((run["number"], v["success_rate"]))
    if not series:
        return None
    data = [{"type": "scatter", "mode": "lines+markers", "name": plot_text(name),
             "x": [n for n, _ in pts], "y": [r for _, r in pts]} for name, pts in series.items()]
    return {"data": data, "layout": _layout("Success rate per run", xaxis={"title": {"text": "run"}, "dtick": 1},
                                            yaxis={"range": [0, 1.05]})}
