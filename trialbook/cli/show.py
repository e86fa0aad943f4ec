"""``trialbook show [JOB|PATH|--last]``: a job's summary (summary.json / summary.md), printed and written.

A job name or ``--last`` is summarised through the block's ``results/index.db`` (refreshed
for that job first); a path of any layout is read from its files. summary.json and
summary.md are written beside the job, or into ``--out DIR`` for read-only sources. A store
URL (``s3://bucket/prefix/JOB``) is read through a local mirror and printed only.
``--json`` prints summary.json (a list of them when PATH holds several jobs).

The command's packages are imported when it runs, and rich only to print tables: ``show --last
--json`` on an up-to-date index imports neither a reader nor a pydantic model.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from trialbook.cli import output
from trialbook.cli.indexing import reported_warnings, warn
from trialbook.cli.output import print_json
from trialbook.layout.store_url import is_url
from trialbook.model.outcome import ERROR_OUTCOMES

if TYPE_CHECKING:
    from trialbook.app.show import ShownSummary

_ERRORS = ", ".join(sorted(str(o) for o in ERROR_OUTCOMES))
#: Per-task tables are printed when the job has at most this many tasks (else see summary.md).
MAX_TASK_ROWS = 30


def _pct(v: float | None) -> str | None:
    return None if v is None else f"{100 * v:.1f}%"


def print_summary(s: dict[str, Any], *, tasks: bool | None = None) -> None:
    """The summary as rich tables: job line, variants, and per-task tables for small jobs."""
    console, esc, table = output.console, output.esc, output.table
    ks = [str(k) for k in range(1, int(s.get("k_max") or 1) + 1)]
    where = f"[{s['layout']}, {s.get('status') or 'unknown status'}]"
    console.print(
        f"[bold]{esc(s['job'])}[/]  {esc(where)}  "
        f"{s['n_trials']} trials counted of {s['n_trials_listed']} listed, {s['n_variants']} variants, "
        f"{s['n_tasks']} tasks, {s['failures']} failures, success {_pct(s['overall_success_rate']) or '—'}",
        highlight=False)
    if s.get("started_at") or s.get("experiment"):
        console.print(f"experiment {s.get('experiment') or '—'}  started {s.get('started_at') or '—'}  "
                      f"finished {s.get('finished_at') or '—'}", highlight=False, style="dim", markup=False)
    for finding in s.get("baseline_findings") or []:
        console.print(f"[yellow]warning:[/] {esc(finding['message'])}", highlight=False)
    if s.get("analysis_dir"):
        console.print(f"job analysis: {s['analysis_dir']}", highlight=False, style="dim", markup=False)
    rows = [(v["variant"], v["n_trials"], v["n_success"], _pct(v["success_rate"]), v["mean_reward"],
             *(_pct(v["pass_at_k"].get(k)) for k in ks), v["n_errors"]) for v in s["variants"]]
    t = table("Variants", ["variant", "trials", "resolved", "success", "mean reward",
                           *(f"pass@{k}" for k in ks), "errors"], rows)
    t.columns[0].overflow = "fold"
    console.print(t)
    usage = [(v["variant"], v.get("agent"), v.get("model"), v.get("total_tokens"), v.get("cost_usd"),
              v.get("aiu"), v.get("mean_turns"), v.get("mean_tool_calls")) for v in s["variants"]]
    u = table("Agents and usage", ["variant", "agent", "model", "tokens", "cost $", "AIU", "turns/trial",
                                   "tool calls/trial"], usage)
    u.columns[0].overflow = u.columns[2].overflow = "fold"
    console.print(u)
    show_tasks = tasks if tasks is not None else s["n_tasks"] <= MAX_TASK_ROWS
    if show_tasks:
        for v in s["variants"]:
            console.print(table(f"Tasks of {v['variant']}", ["task", "trials", "resolved", "success",
                                                             "mean reward", *(f"pass@{k}" for k in ks)],
                                [(x["task"], x["n_trials"], x["n_success"], _pct(x["success_rate"]),
                                  x["mean_reward"], *(_pct(x["pass_at_k"].get(k)) for k in ks))
                                 for x in v["tasks"]]))
    console.print(f"success = resolved / counted trials; errors = {_ERRORS}; pass@k unbiased, "
                  "— where a task has fewer than k attempts", highlight=False, style="dim")


def _report(shown: list[ShownSummary], json_out: bool, tasks: bool | None) -> None:
    for s in shown:
        for w in s.warnings:
            warn(w)
    if json_out:
        print_json(shown[0].summary if len(shown) == 1 else [s.summary for s in shown])
        return
    console = output.console
    for s in shown:
        print_summary(s.summary, tasks=tasks)
        if s.written:
            console.print(f"written: {s.written[0]} and {s.written[1].name}", highlight=False, style="dim")
        elif s.not_written:
            console.print(s.not_written, highlight=False, style="dim")


def register(app: typer.Typer) -> None:
    """Add the ``show`` command to ``app``."""
    @app.command("show")
    def show_cmd(
        target: str = typer.Argument(None, metavar="[JOB|PATH]",
                                     help="A job name (block jobs, then the index), a results path of any layout, "
                                          "or a store URL (s3://bucket/prefix/JOB)"),
        last: bool = typer.Option(False, "--last", help="The last job: the block's most recently run job, else the index's (the default when no JOB is given)"),
        layout: str = typer.Option(None, "--layout", "-l",
                                   help="Force a layout for PATH (native, harbor/pier, legacy, ...) instead of detecting it"),
        json_out: bool = typer.Option(False, "--json", help="Print summary.json"),
        out: Path = typer.Option(None, "--out", "-o", help="Write summary.json/.md here instead of beside the job"),
        write: bool = typer.Option(None, "--write/--no-write",
                                   help="Write summary.json/.md beside the job (default: only for trialbook's "
                                   "own jobs; another harness's tree is left untouched) / print only"),
        tasks: bool = typer.Option(None, "--tasks/--no-tasks", help="Per-task tables (default: when ≤ 30 tasks)"),
        block_dir: Path = typer.Option(None, "--block", "-b", help="Block directory (default: here)"),
        db: Path = typer.Option(None, "--db", help="Index database (default: <block>/results/index.db)"),
    ) -> None:
        """A job's summary: per variant and task, success, pass@k, errors, tokens, cost, AIU, turns."""
        from trialbook.app.show import show_job, show_path
        from trialbook.index.locate import existing_path, lookup_context, resolve_job

        with reported_warnings():
            if is_url(target):  # read from the artifact store through a verified local mirror
                from trialbook.app.store_read import local_target

                local, _ = local_target(target)
                shown = show_path(local, layout=layout or "native", out=out,
                                  write=write if write is not None or out is not None else False)
                _report(shown, json_out, tasks)
                return
            path = existing_path(target)
            if path is not None:
                shown = show_path(path, layout=layout, out=out, write=write)
            else:
                block, db_path, roots = lookup_context(block_dir, db)
                ref = resolve_job(target, last=last, block=block, db=db_path, roots=roots)
                # the schema check of what build_summary made is the tests' (it would import pydantic)
                shown = [show_job(ref, db_path, out=out, write=write, validate=False)]
        _report(shown, json_out, tasks)
