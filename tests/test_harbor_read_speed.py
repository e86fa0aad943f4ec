"""The fast paths of Harbor reading give what the full paths give.

* turn and tool-call counts taken from the raw trajectory JSON (no ATIF model built) equal the
  counts of the validated ATIF model, on the recorded fixtures and on odd but valid trajectories;
* index signatures built from the ``fstat`` of the bytes read equal those of a fresh ``stat``;
* ``show PATH`` reading one job in several processes gives the summary one process gives.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from trialbook.app.parallel_summary import summarize_in_parts
from trialbook.index.jobread import JobPlan, read_plan
from trialbook.index.signatures import files_sig
from trialbook.model.trajectory import parse_trajectory
from trialbook.results.summary import summarize_job
from trialbook.sources import get_reader
from trialbook.sources.harbor_trial import _trajectory_counts

FIXTURES = Path(__file__).parent / "fixtures"
HARBOR_JOB = FIXTURES / "harbor" / "jobs" / "mixed-agents"


def _model_counts(data: dict[str, Any]) -> tuple[int | None, int | None]:
    """(agent steps, tool calls) as the validated ATIF model counts them (None without steps)."""
    traj = parse_trajectory(data)
    if not traj.steps:
        return None, None
    agent = [s for s in traj.steps if s.source == "agent"]
    return len(agent), sum(len(s.tool_calls or ()) for s in agent)


def _step(i: int, source: str, calls: Any = None, **more: Any) -> dict[str, Any]:
    step = {"step_id": i, "source": source, "message": f"m{i}", **more}
    if calls is not None:
        step["tool_calls"] = calls
    return step


def _call(n: int) -> dict[str, Any]:
    return {"tool_call_id": f"c{n}", "function_name": "bash", "arguments": {"command": "ls"}}


BASE = {"schema_version": "ATIF-v1.6", "session_id": "s", "agent": {"name": "a", "version": "1"}}

ODD = {
    "no agent steps": [_step(1, "system"), _step(2, "user")],
    "agent steps without tool calls": [_step(1, "user"), _step(2, "agent"), _step(3, "agent")],
    "empty and null tool call lists": [_step(1, "agent", []), _step(2, "agent", None), _step(3, "agent", [_call(1)])],
    "several calls per step": [_step(1, "agent", [_call(1), _call(2), _call(3)]), _step(2, "agent", [_call(4)])],
    "user steps mentioning agents": [_step(1, "user", message='"source": "agent" "tool_calls": [1, 2]'),
                                     _step(2, "agent", [_call(1)], message="source agent")],
    "many steps": [_step(i, "agent", [_call(i)] * (i % 4) or None) if i % 3 else _step(i, "user")
                   for i in range(1, 400)],
}


@pytest.mark.parametrize("name", sorted(ODD))
def test_fast_counts_equal_the_atif_model_on_odd_trajectories(name: str) -> None:
    data = {**BASE, "steps": ODD[name]}
    raw = orjson.loads(orjson.dumps(data))  # what the reader parses
    _, turns, calls = _trajectory_counts(raw)
    assert (turns, calls) == _model_counts(copy.deepcopy(raw)), name


def test_fast_counts_equal_the_atif_model_on_the_fixtures() -> None:
    files = sorted(FIXTURES.glob("**/trajectory.json")) + sorted((FIXTURES / "atif").glob("*.json"))
    checked = 0
    for path in files:
        raw = orjson.loads(path.read_bytes())
        try:
            expected = _model_counts(copy.deepcopy(raw))
        except Exception:  # not valid ATIF (a damaged fixture): no model to compare with
            continue
        _, turns, calls = _trajectory_counts(raw)
        assert (turns, calls) == expected, path
        checked += 1
    assert checked >= 5


def test_fast_counts_on_steps_that_are_not_atif() -> None:
    """Not ATIF at all: counted defensively (no crash), non-object steps ignored."""
    assert _trajectory_counts({"steps": "x"})[1:] == (None, None)
    assert _trajectory_counts({"steps": [1, "agent", None]})[1:] == (None, None)
    assert _trajectory_counts({"steps": [{"source": "agent", "tool_calls": {"a": 1}}, 7]})[1:] == (1, 0)
    assert _trajectory_counts([{"source": "agent"}])[1:] == (None, None)


def test_signatures_from_the_bytes_read_equal_a_fresh_stat(tmp_path: Path) -> None:
    job = tmp_path / "mixed-agents"
    shutil.copytree(HARBOR_JOB, job, symlinks=True)
    read = read_plan(JobPlan(layout="harbor", root=str(tmp_path), job_dir=str(job), started=0, margin_ns=0,
                             job_files=""))
    assert len(read.sources) == 18
    for path, files, sig, _ in read.sources:
        assert sig == files_sig(files.split("\n")), path
        assert "result.json" in files and "-" not in sig.split(",")


@pytest.mark.parametrize("job_dir", [HARBOR_JOB, FIXTURES / "pier_copilot" / "jobs"])
def test_summary_read_in_parts_equals_one_process(job_dir: Path) -> None:
    reader = get_reader("harbor")
    if job_dir.name == "jobs":
        job_dir = next(d for d in sorted(job_dir.iterdir()) if d.is_dir())
    one = summarize_job(reader.read(job_dir)[0])
    parts = summarize_in_parts(reader, job_dir, workers=3, min_trials=2, part_min=1)
    assert parts is not None
    one.pop("generated_at"), parts.pop("generated_at")
    assert parts == one
    assert summarize_in_parts(reader, job_dir, workers=1) is None  # one worker: the caller reads
