"""``trialbook analyze``: each input kind (Copilot events, ATIF, LiteLLM log), source preference,
trial numbering, and the no-log message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from trialbook.app.pipeline import run_block
from trialbook.cli.demo import create_demo_block
from trialbook.inspect import NO_LOG_MESSAGE, analyze_file, analyze_trial, sniff_file, trial_list
from trialbook.inspect.analyze import read_job_at
from trialbook.jsonio import write_json
from trialbook.model.outcome import Outcome
from trialbook.model.trial import TrialRecord
from trialbook.sources.registry import get_reader

FIXTURES = Path(__file__).parent / "fixtures"
PIER_JOB = FIXTURES / "pier_copilot" / "jobs" / "copilot-demo"


def tb(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "trialbook.cli.main", *args], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "200"})


def _pier_expected(trial: str) -> dict:
    exp = json.loads((FIXTURES / "pier_copilot" / "EXPECTED.json").read_text())
    return next(t for t in exp["trials"] if t["trial_dir"] == trial)


def atif_file(path: Path) -> Path:
    """3 agent turns (bash, bash, edit), per-step metrics, a system error step, 12 s long."""
    def agent(i: int, t: int, tool: str, p: int, c: int, cached: int) -> dict:
        call = f"c{i}"
        return {"step_id": i, "timestamp": f"2026-01-01T00:00:{t:02d}Z", "source": "agent", "message": f"turn {i}",
                "tool_calls": [{"tool_call_id": call, "function_name": tool, "arguments": {"command": "ls"}}],
                "observation": {"results": [{"source_call_id": call, "content": "ok"}]},
                "metrics": {"prompt_tokens": p, "completion_tokens": c, "cached_tokens": cached, "cost_usd": 0.001}}
    data = {"schema_version": "ATIF-v1.6", "session_id": "s1", "agent": {"name": "a", "version": "1", "model_name": "m"},
            "steps": [{"step_id": 1, "timestamp": "2026-01-01T00:00:00Z", "source": "system", "message": "sys"},
                      {"step_id": 2, "timestamp": "2026-01-01T00:00:00Z", "source": "user", "message": "do it"},
                      agent(3, 2, "bash", 100, 10, 0), agent(4, 5, "bash", 200, 20, 50),
                      {"step_id": 5, "timestamp": "2026-01-01T00:00:06Z", "source": "system",
                       "message": "error: the tool crashed"},
                      agent(6, 12, "edit", 300, 30, 150)]}
    path.write_bytes(orjson.dumps(data))
    return path


def litellm_file(path: Path) -> Path:
    """Two successful calls (bash; bash + view) around a failed one."""
    def line(seq: int, status: str, **kw: object) -> dict:
        return {"schema": "trialbook.litellm-line/1", "seq": seq, "status": status, "model": "openai/gpt-x",
                "messages": [{"role": "user", "content": "hi"}], **kw}

    def tc(i: str, name: str) -> dict:
        return {"id": i, "type": "function", "function": {"name": name, "arguments": "{}"}}
    lines = [
        line(1, "success", response={"content": "look", "tool_calls": [tc("a", "bash")]},
             usage={"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}, cost_usd=0.01,
             start_time="2026-01-01T00:00:00Z", end_time="2026-01-01T00:00:02Z"),
        line(2, "failure", error={"type": "RateLimitError", "message": "slow down"},
             start_time="2026-01-01T00:00:03Z", end_time="2026-01-01T00:00:04Z"),
        line(3, "success", response={"content": "fix", "tool_calls": [tc("b", "bash"), tc("c", "view")]},
             usage={"prompt_tokens": 150, "completion_tokens": 20, "total_tokens": 170}, cost_usd=0.02,
             start_time="2026-01-01T00:00:05Z", end_time="2026-01-01T00:00:09.5Z"),
    ]
    path.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    return path


def test_copilot_events_file() -> None:
    events = next((PIER_JOB / "fix-add__cp7Gx4d" / "agent" / "copilot-session").rglob("events.jsonl"))
    assert sniff_file(events) == "copilot_events"
    r = analyze_file(events)
    e = _pier_expected("fix-add__cp7Gx4d")
    assert r.source == "copilot_events"
    assert (r.n_tool_calls, r.tool_calls, r.n_llm_calls) == (e["n_tool_calls"], {"bash": e["n_tool_calls"]}, e["n_llm_calls"])
    assert r.n_turns == e["n_llm_calls"]  # the fixture makes one model call per turn
    assert (r.prompt_tokens, r.completion_tokens, r.cached_tokens) == (e["input_tokens"], e["output_tokens"],
                                                                      e["cache_read_tokens"])
    assert r.total_tokens == e["input_tokens"] + e["output_tokens"]
    assert r.aiu == pytest.approx(e["total_nano_aiu"] * 1e-9) and r.cost_usd is None
    assert r.duration_s and r.duration_s > 0 and r.errors == []
    assert [x.kind for x in r.timeline][:2] == ["user", "agent"] and r.timeline[1].tools[0].startswith("bash(")


def test_atif_file(tmp_path: Path) -> None:
    path = atif_file(tmp_path / "trajectory.json")
    assert sniff_file(path) == "atif"
    r = analyze_file(path)
    assert (r.source, r.model, r.n_turns, r.n_tool_calls) == ("atif", "m", 3, 3)
    assert r.tool_calls == {"bash": 2, "edit": 1}
    assert (r.prompt_tokens, r.completion_tokens, r.cached_tokens, r.total_tokens) == (600, 60, 200, 660)
    assert r.cost_usd == pytest.approx(0.003) and r.duration_s == 12.0
    assert r.errors == ["step 5: error: the tool crashed"]
    assert [(x.index, x.kind, x.offset_s) for x in r.timeline][-2:] == [(5, "error", 6.0), (6, "agent", 12.0)]
    assert r.timeline[2].tokens == 110


def test_litellm_file_via_cli(tmp_path: Path) -> None:
    path = litellm_file(tmp_path / "litellm-trajectory.jsonl")
    assert sniff_file(path) == "litellm"
    res = tb("analyze", "--file", str(path), "--json")
    assert res.returncode == 0, res.stderr
    r = json.loads(res.stdout)
    assert (r["source"], r["model"], r["n_turns"], r["n_llm_calls"], r["n_tool_calls"]) == ("litellm", "openai/gpt-x", 2, 2, 3)
    assert r["tool_calls"] == {"bash": 2, "view": 1}
    assert (r["prompt_tokens"], r["completion_tokens"], r["total_tokens"]) == (250, 30, 280)
    assert r["cost_usd"] == pytest.approx(0.03) and r["duration_s"] == 9.5
    assert r["errors"] == ["call 2: RateLimitError: slow down"]
    assert [x["kind"] for x in r["timeline"]] == ["llm_call", "error", "llm_call"]
    people = tb("analyze", "--file", str(path))
    assert people.returncode == 0 and "RateLimitError" in people.stdout and "view" in people.stdout


def test_unknown_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"hello": 1}\n')
    res = tb("analyze", "--file", str(bad))
    assert res.returncode == 2 and "not a Copilot events.jsonl" in res.stderr


def test_copilot_log_preferred_and_no_log_message() -> None:
    job, reader, _ = read_job_at(PIER_JOB)
    numbers = {t["trial"]: t["number"] for t in trial_list(job)}
    both = analyze_trial(pick := job.trials[numbers["fix-add__cp7Gx4d"] - 1], reader, numbers["fix-add__cp7Gx4d"])
    assert pick.record.trial_name == "fix-add__cp7Gx4d"
    assert both.source == "copilot_events"  # it has a trajectory.json too
    assert (both.outcome, both.reward, both.job) == ("resolved", 1.0, "copilot-demo")
    res = tb("analyze", str(PIER_JOB), "--trial", str(numbers["hello-file__cp7Gx2b"]), "--json")
    assert res.returncode == 0, res.stderr
    r = json.loads(res.stdout)
    assert r["source"] is None and NO_LOG_MESSAGE in r["notes"]
    assert r["outcome"] == "agent_error" and r["errors"]
    human = tb("analyze", str(PIER_JOB / "hello-file__cp7Gx2b"))  # a trial dir: numbered within its job
    assert human.returncode == 0 and NO_LOG_MESSAGE in human.stdout


def test_native_trial_with_only_a_litellm_log(tmp_path: Path) -> None:
    trial = tmp_path / "jobs" / "j" / "t__v__1"
    rec = TrialRecord(trial_name="t__v__1", job="j", task="t", variant="v", agent="a", attempt=1, status="finished",
                      outcome=Outcome.UNRESOLVED, reward=0.0, duration_s=42.0)
    write_json(trial / "trial.json", rec.to_json_dict())
    (trial / "agent").mkdir()
    litellm_file(trial / "agent" / "litellm-trajectory.jsonl")
    (tmp_path / "jobs" / "j" / "config.yaml").write_text("kind: eval\n")
    reader = get_reader("native")
    job = reader.read_trials(tmp_path / "jobs" / "j", None)
    r = analyze_trial(job.trials[0], reader, 1)
    assert (r.source, r.outcome, r.reward, r.n_turns, r.duration_s) == ("litellm", "unresolved", 0.0, 2, 42.0)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = create_demo_block(tmp_path_factory.mktemp("demo") / "block")
    run_block(root / "config.yaml", "demo")
    return root


def test_trial_numbering_is_stable_and_documented(demo: Path) -> None:
    listing = json.loads(tb("analyze", "--last", "--json", cwd=demo).stdout)
    trials = listing["trials"]
    assert [t["number"] for t in trials] == list(range(1, 31))
    keys = [(t["task"], t["variant"], t["attempt"], t["trial"]) for t in trials]
    assert keys == sorted(keys)  # task, variant, attempt, name
    n = next(t["number"] for t in trials if t["trial"] == "fix-the-bug__oracle__2")
    res = tb("analyze", "demo", "--trial", str(n), "--json", cwd=demo)
    assert res.returncode == 0, res.stderr
    r = json.loads(res.stdout)
    assert (r["trial"], r["number"], r["outcome"], r["reward"]) == ("fix-the-bug__oracle__2", n, "resolved", 1.0)
    out_of_range = tb("analyze", "--last", "--trial", "31", cwd=demo)
    assert out_of_range.returncode == 2 and "1..30" in out_of_range.stderr
