"""``trialbook analyze``: pick a trial (or a log file) and build its :class:`TrialReport`.

Sources, in order of preference (spec 004): the Copilot session ``events.jsonl``, then the
ATIF trajectory (the reader's, converted from whatever the layout keeps), then the LiteLLM
log. With none, the report carries the record and says "no Copilot session log or
trajectory is available".

Trials of a job are numbered 1..n in the stable order every reader uses: by task, then
variant, then attempt, then trial directory name (:class:`trialbook.sources.base.JobView`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from trialbook.errors import SourceError, TrialbookError
from trialbook.inspect.from_atif import report_from_atif
from trialbook.inspect.from_copilot import report_from_events_file
from trialbook.inspect.from_litellm import report_from_litellm_file
from trialbook.inspect.report import TrialReport, no_log_report
from trialbook.inspect.tails import output_tails
from trialbook.model.trajectory import load_trajectory
from trialbook.sources.base import JobView, SourceReader, TrialView
from trialbook.sources.registry import detect_layout, get_reader

FILE_KINDS = ("copilot_events", "atif", "litellm")


def _first_json_line(path: Path) -> Any:
    with open(path, "rb") as fh:
        for raw in fh:
            if raw.strip():
                try:
                    return orjson.loads(raw)
                except orjson.JSONDecodeError:
                    return None
    return None


def sniff_file(path: Path) -> str:
    """Which kind of log ``path`` is: ``copilot_events``, ``atif`` or ``litellm`` (SourceError if none)."""
    if not path.is_file():
        raise SourceError("file not found", path, not_found=True)
    if path.suffix == ".json":
        return "atif"
    first = _first_json_line(path)
    if isinstance(first, dict):
        if "type" in first and ("data" in first or first.get("type") == "result"):
            return "copilot_events"
        if "seq" in first or str(first.get("schema", "")).startswith("trialbook.litellm-line"):
            return "litellm"
        if "schema_version" in first:
            return "atif"
    raise SourceError("not a Copilot events.jsonl, an ATIF trajectory.json or a litellm-trajectory.jsonl", path)


def analyze_file(path: Path, kind: str | None = None) -> TrialReport:
    """Report of one log file (its kind sniffed unless given)."""
    kind = kind or sniff_file(path)
    if kind == "copilot_events":
        return report_from_events_file(path)
    if kind == "atif":
        return report_from_atif(load_trajectory(path), str(path))
    if kind == "litellm":
        return report_from_litellm_file(path)
    raise TrialbookError(f"unknown log kind {kind!r}; use one of {', '.join(FILE_KINDS)}")


def analyze_trial(view: TrialView, reader: SourceReader, number: int | None = None) -> TrialReport:
    """Report of one trial from its best log (see the module docstring), completed with its record."""
    logs = reader.log_files(view)
    notes: list[str] = []
    report: TrialReport | None = None
    if "copilot_events" in logs:
        try:
            report = report_from_events_file(logs["copilot_events"])
        except SourceError as exc:
            notes.append(f"Copilot session log unusable: {exc}")
    if report is None:
        try:
            traj = view.trajectory()
            if traj is None and "atif" in logs:
                traj = load_trajectory(logs["atif"])
            if traj is not None:
                report = report_from_atif(traj, str(logs.get("atif", view.path)))
        except SourceError as exc:
            notes.append(f"trajectory unusable: {exc}")
    if report is None and "litellm" in logs:
        try:
            report = report_from_litellm_file(logs["litellm"])
        except (SourceError, ValueError) as exc:
            notes.append(f"LiteLLM log unusable: {str(exc).splitlines()[0]}")
    if report is None:
        report = no_log_report(view.record, number)
    else:
        report.apply_record(view.record, number)
    report.notes = notes + report.notes
    report.output_tails = output_tails(reader.output_files(view))
    return report


def trial_list(job: JobView) -> list[dict[str, Any]]:
    """The job's trials with their analyze numbers (1..n, stable order)."""
    return [{"number": i, "trial": t.record.trial_name, "task": t.record.task, "variant": t.record.variant,
             "attempt": t.record.attempt, "outcome": str(t.record.outcome) if t.record.outcome else None,
             "path": str(t.path)} for i, t in enumerate(job.trials, start=1)]


def pick_trial(job: JobView, number: int) -> TrialView:
    """Trial ``number`` (1-based) of ``job``; out of range is a one-line error."""
    if not job.trials:
        raise TrialbookError(f"job {job.name} has no trials")
    if not 1 <= number <= len(job.trials):
        raise TrialbookError(f"--trial {number}: job {job.name} has trials 1..{len(job.trials)}")
    return job.trials[number - 1]


def read_job_at(path: Path, layout: str | None = None) -> tuple[JobView, SourceReader, Path | None]:
    """The one job at ``path`` (a job or trial dir of any layout), its reader, and the trial dir if one was named."""
    reader = get_reader(layout or detect_layout(path))
    jobs = reader.read(path)
    if len(jobs) != 1:
        names = ", ".join(j.name for j in jobs[:5])
        raise TrialbookError(f"{path} holds {len(jobs)} jobs ({names}); name one job directory")
    job = jobs[0]
    single = job.trials[0].path if len(job.trials) == 1 and job.trials[0].path == path else None
    if single is not None:  # a trial dir: number it within its whole job
        job = reader.read_trials(job.path, None) if job.path != path else job
    return job, reader, single
