"""Real jobs of the ``mini-swe-agent`` variant: LiteLLM to a scripted server, commands in bubblewrap.

Each test scripts the model's replies, runs a job on an example task and checks the files the
trial wrote: the LiteLLM JSONL, the ATIF trajectory, trial.json and the job aggregate.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import make_block, requires_bwrap, write_task
from scripted_llm_server import (
    SUBMIT,
    ScriptedLLMServer,
    http_error,
    malformed_tool_call,
    text,
    tool_call,
)

from trialbook.app.pipeline import run_block
from trialbook.errors import ConfigError
from trialbook.jsonio import read_json
from trialbook.model.atif_validate import validate_trajectory
from trialbook.model.trajectory import parse_trajectory
from trialbook.run.llm_log import conversation_from_log, read_litellm_log
from trialbook.run.scheduler import JobCancelled, JobRunner, prepare_job

pytestmark = requires_bwrap

KEY_ENV = "TEST_OPENAI_API_KEY"
PRICED = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}
CALL_COST = 100 * 1e-6 + 20 * 2e-6  # the scripted server reports 100 prompt / 20 completion tokens
WRITE_HELLO = "echo 'Hello, world!' > /app/hello.txt && cat /app/hello.txt"


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = f"sk-test-{secrets.token_hex(16)}"
    monkeypatch.setenv(KEY_ENV, key)
    return key


def variant(server: ScriptedLLMServer, name: str = "mini", model: str = "openai/scripted",
            **settings: Any) -> dict[str, Any]:
    """A mini-swe-agent variant talking to ``server`` (LiteLLM keeps prices per model name process-wide,
    so tests that need an unpriced model use a name no other test prices)."""
    return {"name": name, "agent": "mini-swe-agent", "model": model, "api_base": server.base_url,
            "api_key_env": KEY_ENV, "settings": {"retry_wait_s": 0.01, **settings}}


def run_job(tmp_path: Path, variants: list[dict], tasks: list[str] | None = None, **cfg: Any) -> Path:
    root = make_block(tmp_path, tasks=tasks or ["hello-world"], variants=variants, **cfg)
    return run_block(root / "config.yaml", "job").outcome.job_dir


def assert_no_secret(root: Path, key: str) -> None:
    leaked = [p for p in root.rglob("*") if p.is_file() and key.encode() in p.read_bytes()]
    assert leaked == []


def atif(trial_dir: Path) -> dict[str, Any]:
    data = read_json(trial_dir / "agent" / "trajectory.json")
    assert validate_trajectory(data) == []
    parse_trajectory(data)
    return data


def test_solves_hello_world_in_the_sandbox(tmp_path: Path, api_key: str) -> None:
    script = [tool_call("ls /logs/agent /app; echo key=$LEAKY", content="Look first."),
              tool_call(WRITE_HELLO, reasoning="Write the file."), tool_call(SUBMIT, content="Done.")]
    with ScriptedLLMServer(script) as srv:
        v = variant(srv, model_kwargs={"temperature": 0.0, **PRICED})
        v["env"] = {"LEAKY": f"${{{KEY_ENV}}}"}  # the key inside the sandbox: its output must be scrubbed
        job = run_job(tmp_path, [v])
        requests = srv.chat_requests
        base = srv.base_url
    trial = job / "hello-world"
    rec = read_json(trial / "trial.json")
    assert (rec["outcome"], rec["reward"], rec["exception"]) == ("resolved", 1.0, None)
    assert rec["extra"]["exit_status"] == "Submitted" and rec["extra"]["agent_exit_code"] == 0
    assert (rec["n_turns"], rec["n_tool_calls"]) == (3, 3)
    usage = rec["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["cached_tokens"],
            usage["total_tokens"], usage["n_llm_calls"]) == (300, 60, 120, 360, 3)
    assert usage["cost_usd"] == pytest.approx(3 * CALL_COST)
    agg = read_json(job / "results.json")
    assert agg["variants"]["mini"]["usage"] == usage and agg["usage"]["cost_usd"] == pytest.approx(3 * CALL_COST)

    # The model was reached through LiteLLM with the key from the env var, never written anywhere.
    assert len(requests) == 3 and all(r.headers["Authorization"] == f"Bearer {api_key}" for r in requests)
    assert all(r.body["model"] == "scripted" and r.body["tools"][0]["function"]["name"] == "bash"
               for r in requests)
    assert_no_secret(tmp_path, api_key)

    lines = read_litellm_log(trial / "agent" / "litellm-trajectory.jsonl")
    assert [(ln.seq, ln.step, ln.status) for ln in lines] == [(1, 1, "success"), (2, 2, "success"),
                                                              (3, 3, "success")]
    for ln, req in zip(lines, requests, strict=True):
        assert (ln.trial_id, ln.model, ln.provider, ln.api_base) == ("job/hello-world", "openai/scripted",
                                                                   "openai", base)
        assert [m["role"] for m in ln.messages] == [m["role"] for m in req.body["messages"]]
        assert ln.tools and ln.tools[0]["function"]["name"] == "bash" and ln.params["temperature"] == 0.0
        assert ln.usage and (ln.usage.prompt_tokens, ln.usage.cached_tokens) == (100, 40)
        assert ln.cost_usd == pytest.approx(CALL_COST) and ln.error is None
    first, second, third = lines
    assert [m["role"] for m in first.messages] == ["system", "user"]
    assert "Create a file /app/hello.txt" in first.messages[1]["content"]
    assert second.messages[:2] == first.messages
    assert second.messages[2]["role"] == "assistant" and second.messages[2]["content"] == "Look first."
    tool_msg = second.messages[3]
    assert tool_msg["role"] == "tool" and tool_msg["tool_call_id"] == "call_001_1"
    assert "instruction.md" in tool_msg["content"]  # /logs/agent exists only inside the sandbox
    assert "key=***REDACTED***" in tool_msg["content"]
    assert api_key in requests[1].raw.decode()  # the model saw the real output; no file has it
    assert second.response and second.response.reasoning_content == "Write the file."
    assert json.loads(second.response.tool_calls[0].function.arguments) == {"command": WRITE_HELLO}
    conv = conversation_from_log(trial / "agent" / "litellm-trajectory.jsonl")
    assert conv[:-1] == third.messages and conv[-1]["content"] == "Done."

    native = read_json(trial / "agent" / "mini-swe-agent.traj.json")
    assert native["info"]["exit_status"] == "Submitted" and native["trajectory_format"] == "mini-swe-agent-1.1"

    traj = atif(trial)
    assert traj["schema_version"] == "ATIF-v1.8" and traj["session_id"] == "job/hello-world"
    assert traj["agent"]["name"] == "mini-swe-agent" and traj["agent"]["model_name"] == "openai/scripted"
    assert traj["agent"]["tool_definitions"][0]["function"]["name"] == "bash"
    steps = traj["steps"]
    assert [s["source"] for s in steps] == ["system", "user", "agent", "agent", "agent"]
    s1, s2, s3 = steps[2:]
    assert s1["message"] == "Look first." and s2["reasoning_content"] == "Write the file."
    assert s2["tool_calls"] == [{"tool_call_id": "call_002_1", "function_name": "bash",
                                 "arguments": {"command": WRITE_HELLO}}]
    (obs,) = s2["observation"]["results"]
    assert obs["source_call_id"] == "call_002_1" and "Hello, world!" in obs["content"]
    assert s3["observation"]["results"][0]["extra"] == {"role": "exit", "exit_status": "Submitted"}
    for s in (s1, s2, s3):
        assert s["metrics"]["prompt_tokens"] == 100 and s["metrics"]["completion_tokens"] == 20
        assert s["metrics"]["cached_tokens"] == 40 and s["metrics"]["cost_usd"] == pytest.approx(CALL_COST)
        assert s["llm_call_count"] == 1 and s["model_name"] == "openai/scripted"
    fm = traj["final_metrics"]
    assert (fm["total_prompt_tokens"], fm["total_completion_tokens"], fm["total_cached_tokens"],
            fm["total_steps"]) == (300, 60, 120, 5)
    assert fm["total_cost_usd"] == pytest.approx(3 * CALL_COST)


def test_http_500_then_success(tmp_path: Path, api_key: str) -> None:
    with ScriptedLLMServer([http_error(500), tool_call(WRITE_HELLO), tool_call(SUBMIT)]) as srv:
        job = run_job(tmp_path, [variant(srv, model="openai/unpriced-model")])
    trial = job / "hello-world"
    lines = read_litellm_log(trial / "agent" / "litellm-trajectory.jsonl")
    assert [(ln.seq, ln.step, ln.status) for ln in lines] == [(1, 1, "failure"), (2, 1, "success"),
                                                              (3, 2, "success")]
    assert lines[0].error and lines[0].error.status_code == 500 and lines[0].response is None
    assert lines[0].messages == lines[1].messages
    rec = read_json(trial / "trial.json")
    assert rec["outcome"] == "resolved" and rec["extra"]["llm_call_failures"] == 1
    assert rec["usage"]["n_llm_calls"] == 2 and rec["usage"]["cost_usd"] is None  # unpriced model
    step = atif(trial)["steps"][2]
    assert step["llm_call_count"] == 2 and step["extra"]["failed_llm_calls"][0]["seq"] == 1
    assert_no_secret(tmp_path, api_key)


def test_provider_down_is_an_agent_error_with_a_log_and_trajectory(tmp_path: Path, api_key: str) -> None:
    with ScriptedLLMServer(default=http_error(503, "down for maintenance")) as srv:
        job = run_job(tmp_path, [variant(srv, retry_attempts=3)])
        assert len(srv.chat_requests) == 3
    trial = job / "hello-world"
    rec = read_json(trial / "trial.json")
    assert rec["outcome"] == "agent_error" and "down for maintenance" in rec["reason"]
    assert rec["usage"]["n_llm_calls"] == 0 and rec["n_turns"] == 0  # filled from the log by the hook
    lines = read_litellm_log(trial / "agent" / "litellm-trajectory.jsonl")
    assert [(ln.seq, ln.status, ln.error.status_code) for ln in lines] == [
        (1, "failure", 503), (2, "failure", 503), (3, "failure", 503)]
    traj = atif(trial)
    assert [s["source"] for s in traj["steps"]] == ["system", "user"]
    assert len(traj["extra"]["unanswered_failed_llm_calls"]) == 3
    assert traj["final_metrics"]["extra"] == {"llm_call_failures": 3}


def test_model_that_never_finishes_hits_the_step_limit(tmp_path: Path, api_key: str) -> None:
    with ScriptedLLMServer(default=tool_call("echo still working")) as srv:
        job = run_job(tmp_path, [variant(srv, step_limit=3)])
        assert len(srv.chat_requests) == 3
    rec = read_json(job / "hello-world" / "trial.json")
    assert (rec["outcome"], rec["reward"], rec["exception"]) == ("unresolved", 0.0, None)
    assert rec["extra"]["limit"] == "step_limit" and rec["extra"]["exit_status"] == "LimitsExceeded"
    assert (job / "hello-world" / "evaluation" / "verdict.json").exists()  # the verifier still graded
    traj = atif(job / "hello-world")
    assert traj["extra"]["limit"] == "step_limit" and len(traj["steps"]) == 5


def test_cost_limit(tmp_path: Path, api_key: str) -> None:
    with ScriptedLLMServer(default=tool_call("true")) as srv:
        job = run_job(tmp_path, [variant(srv, step_limit=0, cost_limit=2.5 * CALL_COST, model_kwargs=PRICED)])
    rec = read_json(job / "hello-world" / "trial.json")
    assert rec["extra"]["limit"] == "cost_limit" and rec["n_turns"] == 3 and rec["outcome"] == "unresolved"


def test_malformed_tool_call_is_recorded_not_a_crash(tmp_path: Path, api_key: str) -> None:
    script = [malformed_tool_call('{"command": "ls', content="Oops."), tool_call(WRITE_HELLO), tool_call(SUBMIT)]
    with ScriptedLLMServer(script) as srv:
        job = run_job(tmp_path, [variant(srv)])
    trial = job / "hello-world"
    assert read_json(trial / "trial.json")["outcome"] == "resolved"
    first, second, _ = read_litellm_log(trial / "agent" / "litellm-trajectory.jsonl")
    assert first.response and first.response.tool_calls[0].function.arguments == '{"command": "ls'
    feedback = second.messages[-1]
    assert feedback["role"] == "user" and "Error parsing tool call arguments" in feedback["content"]
    step = atif(trial)["steps"][2]
    assert step["tool_calls"][0]["arguments"] == {"_raw": '{"command": "ls'}
    assert "not valid JSON" in step["extra"]["trialbook_notes"][0]
    (obs,) = step["observation"]["results"]
    assert obs["source_call_id"] == step["tool_calls"][0]["tool_call_id"]
    assert "Error parsing tool call arguments" in obs["content"]


def test_text_mode(tmp_path: Path, api_key: str) -> None:
    def block(cmd: str) -> str:
        return f"THOUGHT: go.\n\n```mswea_bash_command\n{cmd}\n```"

    with ScriptedLLMServer([text(block(WRITE_HELLO)), text(block(SUBMIT))]) as srv:
        job = run_job(tmp_path, [variant(srv, mode="text")])
        assert all("tools" not in r.body for r in srv.chat_requests)
    trial = job / "hello-world"
    assert read_json(trial / "trial.json")["outcome"] == "resolved"
    step = atif(trial)["steps"][2]
    assert step["extra"]["tool_calls_parsed_from_text"] is True
    assert step["tool_calls"][0]["arguments"] == {"command": WRITE_HELLO}
    (obs,) = step["observation"]["results"]
    assert obs["source_call_id"] == step["tool_calls"][0]["tool_call_id"] and "Hello, world!" in obs["content"]


def _sleep_command() -> str:
    """A ``sleep`` no other process runs (tests may run concurrently on this machine)."""
    return f"sleep {300 + secrets.randbelow(10**6) / 10**6:.6f}"


def _sleepers(command: str) -> list[str]:
    out = subprocess.run(["pgrep", "-f", command.replace(".", "[.]")], capture_output=True, text=True)
    return out.stdout.split()


def test_agent_timeout_kills_the_process_tree(tmp_path: Path, api_key: str) -> None:
    tasks = tmp_path / "extra"
    write_task(tasks, "slow", test_sh="echo 0 > /logs/verifier/reward.txt\n", toml="[agent]\ntimeout_sec = 3\n")
    importlib.import_module("trialbook.run.agents.miniswe_loop")  # keep import time out of the timing
    sleep = _sleep_command()
    with ScriptedLLMServer(default=tool_call(f"{sleep} & {sleep}")) as srv:
        root = make_block(tmp_path, extra_tasks_dir=tasks, variants=[variant(srv, command_timeout_s=100)])
        t0 = time.monotonic()
        job = run_block(root / "config.yaml", "job").outcome.job_dir
        elapsed = time.monotonic() - t0
    assert elapsed < 20  # 3 s agent timeout + setup and verifier; the runner's own backstop is 33 s
    rec = read_json(job / "slow" / "trial.json")
    assert rec["outcome"] == "timeout" and rec["exception"]["type"] == "AgentTimeoutError"
    assert _sleepers(sleep) == []
    traj = atif(job / "slow")
    assert traj["extra"]["exit_status"] == "Timeout" and traj["steps"][-1]["source"] == "agent"


def test_command_timeout_is_an_observation(tmp_path: Path, api_key: str) -> None:
    sleep = _sleep_command()
    with ScriptedLLMServer([tool_call(sleep), tool_call(WRITE_HELLO), tool_call(SUBMIT)]) as srv:
        job = run_job(tmp_path, [variant(srv, command_timeout_s=1)])
    assert _sleepers(sleep) == []
    assert read_json(job / "hello-world" / "trial.json")["outcome"] == "resolved"
    obs = atif(job / "hello-world")["steps"][2]["observation"]["results"][0]["content"]
    assert "timed out after 1s" in obs


def test_ctrl_c_stops_the_loop_promptly(tmp_path: Path, api_key: str) -> None:
    sleep = _sleep_command()
    with ScriptedLLMServer(default=tool_call(sleep)) as srv:
        root = make_block(tmp_path, tasks=["hello-world"], variants=[variant(srv, command_timeout_s=100)])
        setup = prepare_job(root / "config.yaml", "job")

        async def main() -> float:
            task = asyncio.create_task(JobRunner(setup).run())
            for _ in range(200):
                await asyncio.sleep(0.05)
                if _sleepers(sleep):
                    break
            t0 = time.monotonic()
            task.cancel()
            with pytest.raises(JobCancelled):
                await task
            return time.monotonic() - t0

        assert asyncio.run(main()) < 5
    assert _sleepers(sleep) == []
    rec = read_json(setup.job.trial("hello-world").trial_json)
    assert rec["outcome"] == "cancelled"


def test_oracle_nop_and_command_trials_get_minimal_atif(tmp_path: Path) -> None:
    job = run_job(tmp_path, [{"name": "oracle", "agent": "oracle"}, {"name": "nop", "agent": "nop"},
                             {"name": "cmd", "agent": "command", "command": "echo hi from $TRIALBOOK_TASK"}])
    oracle = atif(job / "hello-world__oracle__1")
    assert [s["source"] for s in oracle["steps"]] == ["user", "agent"]
    assert oracle["steps"][0]["message"].startswith("Create a file /app/hello.txt")
    agent_step = oracle["steps"][1]
    assert agent_step["tool_calls"][0]["arguments"] == {"command": "bash /solution/solve.sh"}
    assert agent_step["llm_call_count"] == 0 and "metrics" not in agent_step
    assert agent_step["observation"]["results"][0]["source_call_id"] == "call_1"
    nop = atif(job / "hello-world__nop__1")
    assert [s["source"] for s in nop["steps"]] == ["user"] and nop["agent"]["name"] == "nop"
    cmd = atif(job / "hello-world__cmd__1")["steps"][1]
    assert cmd["observation"]["results"][0]["content"].strip() == "hi from hello-world"
    assert cmd["observation"]["results"][0]["extra"] == {"exit_code": 0}


@pytest.mark.parametrize(("patch", "message"), [
    ({"settings": {"stepz": 3}}, "settings.stepz: unknown key"),
    ({"model": None}, "needs `model:`"),
    ({"api_key_env": "TRIALBOOK_TEST_UNSET_KEY"}, "TRIALBOOK_TEST_UNSET_KEY (api_key_env) is not set"),
    ({"settings": {"model_kwargs": {"api_key": "sk-x"}}}, "model_kwargs.api_key"),
])
def test_bad_variants_fail_at_job_start(tmp_path: Path, api_key: str, patch: dict, message: str) -> None:
    v = {"name": "mini", "agent": "mini-swe-agent", "model": "openai/x", "api_key_env": KEY_ENV, **patch}
    root = make_block(tmp_path, tasks=["hello-world"], variants=[v])
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        prepare_job(root / "config.yaml", "job")


def test_example_llm_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import resources

    from trialbook.config import load_config
    from trialbook.run.agents.base import get_agent

    cfg = load_config(Path(str(resources.files("trialbook.examples").joinpath("llm", "config.yaml"))))
    (v,) = cfg.variants
    assert (v.agent, v.api_key_env, v.model) == ("mini-swe-agent", "OPENAI_API_KEY", "openai/gpt-4o-mini")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-example")
    get_agent(v.agent).check(v)
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        get_agent(v.agent).check(v)
