"""``trialbook analyze``: explain one trial (or one log file) — outcome, turns, tools, tokens, timeline.

    trialbook analyze --last --trial 1
    trialbook analyze JOB --trial N          (JOB: a name, or a job/trial directory of any layout)
    trialbook analyze --file PATH            (events.jsonl, trajectory.json or litellm-trajectory.jsonl)

Without ``--trial`` (and with several trials) it lists the job's trials with their numbers.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.panel import Panel
from rich.text import Text

from trialbook.cli.indexing import reported_warnings
from trialbook.cli.output import console, esc, print_json, table
from trialbook.index.locate import existing_path, lookup_context, resolve_job
from trialbook.inspect.analyze import (
    FILE_KINDS,
    analyze_file,
    analyze_trial,
    pick_trial,
    read_job_at,
    trial_list,
)
from trialbook.inspect.report import TrialReport
from trialbook.sources.registry import get_reader


def _num(v: float | int | None, digits: int = 4) -> str:
    if v is None:
        return "—"
    return f"{v:,}" if isinstance(v, int) else f"{v:,.{digits}g}" if abs(v) < 1 else f"{v:,.2f}"


def print_report(r: TrialReport, steps: int) -> None:
    """The report for people: facts table, tool calls, errors, and the first ``steps`` timeline entries."""
    title = f"Trial {r.number}: {r.trial}" if r.number else (r.trial or r.source_path or "trial")
    rows = [("job", r.job), ("task / variant", f"{r.task or '—'} / {r.variant or '—'}" if r.task else None),
            ("model", r.model), ("outcome", r.outcome), ("reward", r.reward), ("reason", r.reason),
            ("turns", r.n_turns), ("tool calls", r.n_tool_calls), ("LLM calls", r.n_llm_calls),
            ("tokens (prompt / completion / cached)",
             f"{_num(r.prompt_tokens)} / {_num(r.completion_tokens)} / {_num(r.cached_tokens)}"),
            ("total tokens", _num(r.total_tokens)), ("cost (USD)", _num(r.cost_usd)), ("AIU", _num(r.aiu)),
            ("duration (s)", r.duration_s), ("started", r.started_at),
            ("source", f"{r.source}: {r.source_path}" if r.source else None)]
    t = table(title, ["", "value"], [(k, v) for k, v in rows if v is not None])
    t.columns[1].overflow = "fold"
    console.print(t)
    if r.tool_calls:
        console.print(table("Tool calls by tool", ["tool", "calls"], sorted(r.tool_calls.items(), key=lambda x: -x[1])))
    for e in r.errors:
        console.print(f"[red]error:[/] {esc(e)}", highlight=False)
    for n in r.notes:
        console.print(f"note: {n}", highlight=False, style="dim", markup=False)
    if r.outcome != "resolved":
        for key, label in (("verifier_output", "verifier output"), ("agent_output", "agent output")):
            if key in r.output_tails:
                console.print(Panel(Text(r.output_tails[key]), title=f"{label} (last lines)",
                                    title_align="left", border_style="dim"))
    if r.timeline and steps > 0:
        shown = r.timeline[:steps]
        tl = table(f"Timeline ({len(shown)} of {len(r.timeline)})", ["#", "t+s", "kind", "tokens", "text", "tools"],
                   [(e.index, None if e.offset_s is None else f"{e.offset_s:.1f}", e.kind, e.tokens, e.text,
                     ", ".join(e.tools) or None) for e in shown])
        tl.columns[4].overflow = "fold"
        console.print(tl)


def register(app: typer.Typer) -> None:
    """Add the ``analyze`` command to ``app``."""
    @app.command("analyze")
    def analyze_cmd(
        target: str = typer.Argument(None, metavar="[JOB|PATH]", help="Job name, or a job or trial directory"),
        last: bool = typer.Option(False, "--last", help="The last job: the block's most recently run job, else the index's (the default when no JOB is given)"),
        trial: int = typer.Option(None, "--trial", "-t", help="Trial number 1..n (order: task, variant, attempt, name)"),
        file: Path = typer.Option(None, "--file", help="Analyze one log file instead of a trial"),
        kind: str = typer.Option(None, "--kind", help=f"Kind of --file ({', '.join(FILE_KINDS)}; default: sniffed)"),
        layout: str = typer.Option(None, "--layout", "-l", help="Force the layout of PATH"),
        steps: int = typer.Option(40, "--steps", help="Timeline entries to print (JSON has all)"),
        json_out: bool = typer.Option(False, "--json", help="Print the report as JSON"),
        block_dir: Path = typer.Option(None, "--block", "-b", help="Block directory (default: here)"),
        db: Path = typer.Option(None, "--db", help="Index database (default: <block>/results/index.db)"),
    ) -> None:
        """Explain one trial: outcome, reward, turns, tool calls by tool, tokens, cost, AIU, errors, timeline."""
        with reported_warnings():
            if file is not None:
                report = analyze_file(file, kind)
            else:
                path = existing_path(target)
                if path is not None:
                    job, reader, single = read_job_at(path, layout)
                else:
                    block, db_path, roots = lookup_context(block_dir, db)
                    ref = resolve_job(target, last=last, block=block, db=db_path, roots=roots)
                    reader = get_reader(ref.layout)
                    job, single = reader.read_trials(ref.job_dir, None), None
                if trial is None and single is not None:
                    trial = next(i for i, t in enumerate(job.trials, 1) if t.path == single)
                if trial is None and len(job.trials) != 1:
                    listing = trial_list(job)
                    if json_out:
                        print_json({"job": job.name, "trials": listing})
                        return
                    console.print(table(f"{job.name}: pick one with --trial N",
                                        ["N", "trial", "task", "variant", "attempt", "outcome"],
                                        [(x["number"], x["trial"], x["task"], x["variant"], x["attempt"],
                                          x["outcome"]) for x in listing]))
                    return
                number = trial or 1
                report = analyze_trial(pick_trial(job, number), reader, number)
        if json_out:
            print_json(report.to_dict())
            return
        print_report(report, steps)
