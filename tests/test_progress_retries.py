"""Retries in the progress display: failed model calls and re-run trials, counted as trials finish."""

from __future__ import annotations

import io
import os
import secrets
import subprocess
import sys
from pathlib import Path

from conftest import make_block, requires_bwrap
from rich.console import Console
from scripted_llm_server import SUBMIT, ScriptedLLMServer, http_error, tool_call

from trialbook.cli.progress import JobProgress, RunTally
from trialbook.model.outcome import Outcome
from trialbook.model.trial import TrialRecord

KEY_ENV = "TEST_PROGRESS_RETRIES_KEY"


def _record(name: str, outcome: Outcome, *, failed_calls: int = 0, retries: int = 0) -> TrialRecord:
    rec = TrialRecord(trial_name=name, job="j", task="t", variant="v", agent="a", attempt=1, outcome=outcome)
    rec.retries = retries
    if failed_calls:
        rec.extra["llm_call_failures"] = failed_calls
    return rec


def test_plain_lines_say_what_was_retried() -> None:
    out = io.StringIO()
    progress = JobProgress(Console(file=out, force_terminal=False, width=200), every_s=0)
    tally = RunTally()
    progress.start("j", 3)
    for done, rec in enumerate([_record("a", Outcome.RESOLVED),
                                _record("b", Outcome.RESOLVED, failed_calls=2),
                                _record("c", Outcome.INFRA_ERROR, retries=1)], start=1):
        tally.add(rec)
        progress.update(done, 3, tally)
    lines = out.getvalue().splitlines()
    assert lines[1].startswith("job j: 1/3 done (resolved=1), elapsed")
    assert lines[2].startswith("job j: 2/3 done (resolved=2 | retried: 2 failed model calls), elapsed")
    assert lines[3].startswith("job j: 3/3 done (infra_error=1 resolved=2 | retried: 2 failed model calls, "
                               "1 re-run trials), elapsed")


@requires_bwrap
def test_run_shows_a_failed_model_call(tmp_path: Path) -> None:
    env = {**os.environ, KEY_ENV: f"sk-{secrets.token_hex(8)}", "NO_COLOR": "1"}
    with ScriptedLLMServer([http_error(500), tool_call("echo 'Hello, world!' > /app/hello.txt"),
                            tool_call(SUBMIT)]) as srv:
        root = make_block(tmp_path, tasks=["hello-world"], variants=[
            {"name": "mini", "agent": "mini-swe-agent", "model": "openai/scripted-progress",
             "api_base": srv.base_url, "api_key_env": KEY_ENV, "settings": {"retry_wait_s": 0.01}}])
        ran = subprocess.run([sys.executable, "-m", "trialbook.cli.main", "run", "--job", "j"], cwd=root,
                             capture_output=True, text=True, env=env)
    assert ran.returncode == 0, ran.stderr
    assert "job j: 1/1 done (resolved=1 | retried: 1 failed model calls)" in ran.stderr, ran.stderr
