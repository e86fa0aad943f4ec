"""Progress of a running job for people: a live bar on a terminal, plain lines otherwise.

Redirected output (CI logs, ``nohup``, ``| tee``) gets a line every ``every_s`` seconds or
every tenth of the job, whichever comes first, so a log shows the job moving. Both show the
outcomes so far and what was retried: model calls that failed (and were tried again or ended
the trial) and trials re-run after an infrastructure error.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


@dataclass
class RunTally:
    """Outcomes and retries of the trials finished so far (what the progress line shows)."""

    outcomes: dict[str, int] = field(default_factory=dict)
    failed_calls: int = 0
    rerun_trials: int = 0

    def add(self, record: Any) -> None:
        """Count one finished trial (a :class:`~trialbook.model.trial.TrialRecord`)."""
        if record is None:
            return
        if record.outcome:
            self.outcomes[str(record.outcome)] = self.outcomes.get(str(record.outcome), 0) + 1
        self.failed_calls += int(record.extra.get("llm_call_failures") or 0)
        self.rerun_trials += int(record.retries or 0)

    def text(self) -> str:
        parts = [" ".join(f"{k}={v}" for k, v in sorted(self.outcomes.items()))]
        retried = [f"{n} {what}" for n, what in ((self.failed_calls, "failed model calls"),
                                                 (self.rerun_trials, "re-run trials")) if n]
        if retried:
            parts.append("retried: " + ", ".join(retried))
        return " | ".join(p for p in parts if p)


class JobProgress:
    """Receives (done, total, counts) updates; draws a bar with ETA or prints plain lines."""

    def __init__(self, console: Console, *, quiet: bool = False, every_s: float = 10.0) -> None:
        self.console, self.quiet, self.every_s = console, quiet, every_s
        self.live = console.is_terminal and not quiet
        self.bar = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"), TimeElapsedColumn(), TextColumn("eta"),
            TimeRemainingColumn(), console=console, disable=not self.live, transient=False,
        )
        self.task_id: Any = None
        self.name = ""
        self.t0 = time.monotonic()
        self.last_line = 0.0
        self.last_done = -1

    def __enter__(self) -> JobProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)

    def start(self, name: str, total: int) -> None:
        self.name, self.t0 = name, time.monotonic()
        self.task_id = self.bar.add_task(f"job {name}", total=total, counts="")
        if not self.live and not self.quiet:
            self.console.print(f"job {name}: {total} trials planned", highlight=False)

    def update(self, done: int, total: int, tally: RunTally) -> None:
        text = tally.text()
        if self.task_id is not None:
            self.bar.update(self.task_id, completed=done, counts=text)
        if self.live or self.quiet or done == self.last_done:
            return
        now = time.monotonic()
        step = max(1, total // 10)
        if done < total and now - self.last_line < self.every_s and done - max(self.last_done, 0) < step:
            return
        self.last_line, self.last_done = now, done
        elapsed = now - self.t0
        eta = f", eta {_clock(elapsed / done * (total - done))}" if 0 < done < total else ""
        self.console.print(f"job {self.name}: {done}/{total} done ({text or 'no outcomes yet'}), "
                           f"elapsed {_clock(elapsed)}{eta}", highlight=False)
