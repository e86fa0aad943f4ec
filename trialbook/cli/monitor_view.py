"""The monitor on a terminal: one screen of 80x24, the most important facts first.

Order: the job line (state, progress, ETA), outcomes, errors by type, stalled trials, then
running and slowest trials as far as the height allows. ``logs/monitor.md`` keeps everything.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.text import Text

from trialbook.run.monitor import is_live


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


def compact_lines(snap: dict[str, Any], *, width: int = 80, height: int = 24) -> list[tuple[str, str]]:
    """(text, style) lines of the report, at most ``height`` lines of at most ``width`` characters."""
    total, done = snap.get("total") or 0, snap.get("done") or 0
    bar_w = 20
    filled = int(bar_w * done / total) if total else 0
    pct = f"{snap['percent']:.0f}%" if snap.get("percent") is not None else "—"
    tput = snap.get("throughput_per_min")
    lines: list[tuple[str, str]] = [
        (f"job {snap.get('job')}  {snap.get('state')}", "bold"),
        (f"[{'#' * filled}{'.' * (bar_w - filled)}] {done}/{total} {pct}  elapsed {_dur(snap.get('elapsed_s'))}"
         f"  eta {_dur(snap.get('eta_s'))}  {f'{tput:.1f}/min' if tput else ''}".rstrip(), ""),
    ]
    if snap.get("state") == "running" and not is_live(snap):
        lines.append((f"runner (pid {snap.get('pid')}) is gone: this report is stale", "yellow"))
    outcomes = "  ".join(f"{k}={v}" for k, v in (snap.get("outcomes") or {}).items())
    lines.append((f"outcomes: {outcomes or 'none yet'}", ""))
    errors = list((snap.get("errors_by_type") or {}).items())
    if errors:
        lines.append(("errors: " + "  ".join(f"{k}={v}" for k, v in errors[:4])
                      + (f"  (+{len(errors) - 4} more)" if len(errors) > 4 else ""), "red"))
    stalled = snap.get("stalled") or []
    sections: list[tuple[str, list[str], str]] = [
        (f"stalled (no output for > {_dur(snap.get('stall_after_s'))})",
         [f"  {r['trial']}  idle {_dur(r.get('idle_s'))}" for r in stalled], "yellow"),
        (f"running ({len(snap.get('running') or [])})",
         [f"  {r['trial']}  {_dur(r.get('running_s'))}, last output {_dur(r.get('idle_s'))} ago"
          for r in snap.get("running") or []], ""),
        ("slowest finished", [f"  {s['trial']}  {_dur(s.get('duration_s'))}  {s.get('outcome')}"
                              for s in snap.get("slowest") or []], "dim"),
    ]
    for title, rows, style in sections:
        room = height - len(lines) - 1
        if not rows or room < 2:
            continue
        shown = rows[: room - 1] if len(rows) > room - 1 else rows
        lines.append((title, "bold " + style if style else "bold"))
        hidden = len(rows) - len(shown)
        if hidden:
            shown = shown[:-1] + [f"  … {hidden + 1} more (see logs/monitor.md)"]
        lines += [(row, style) for row in shown]
    return [(_cut(text, width), style) for text, style in lines[:height]]


def compact_view(snap: dict[str, Any], *, width: int = 80, height: int = 24) -> Group:
    """The compact report as a rich renderable."""
    return Group(*(Text(text, style=style, no_wrap=True) for text, style in
                   compact_lines(snap, width=width, height=height)))
