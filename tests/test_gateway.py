"""The model gateway end to end: a real LiteLLM proxy, real bubblewrap sandboxes, a scripted model server.

One job runs two ``cli`` variants concurrently on the hello-world task. Each trial's program
(Python's standard library, run from the variant's ``install:``ed script) asks the gateway for
the answer in the OpenAI chat shape, the Anthropic messages shape and the OpenAI Responses shape, with the key its
sandbox was given, from inside a ``network: false`` sandbox. The test checks what a user
relies on: the task is solved, each call is a line of its own trial's log only, usage and
ATIF come from those lines, the real key is nowhere in the sandbox or the trial tree, no other
address is reachable, an unknown key is refused, and step and cost budgets are enforced with HTTP 429.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import make_block, requires_bwrap
from scripted_llm_server import ScriptedLLMServer, text
from unprivileged import give, remove, running_as_root, shared_tmpdir, trialbook

from trialbook.app.pipeline import run_block
from trialbook.config import VariantConfig
from trialbook.jsonio import read_json
from trialbook.model.atif_validate import validate_trajectory
from trialbook.model.trial import TrialRecord
from trialbook.run.agents.base import AgentResult
from trialbook.run.agents.install import AGENT_DIR
from trialbook.run.environments.local import Mount, Sandbox
from trialbook.run.gateway import Gateway
from trialbook.run.llm_log import read_litellm_log
from trialbook.run.trial import _close_gateway

pytestmark = requires_bwrap

KEY_ENV = "TEST_GATEWAY_REAL_KEY"
PRICED = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}
CALL_COST = 100 * 1e-6 + 20 * 2e-6  # the scripted server reports 100 prompt / 20 completion tokens

#: The agent program: stdlib Python calling the gateway as any OpenAI/Anthropic client would.
PROGRAM = r'''#!/usr/bin/python3
import json, os, socket, sys, urllib.error, urllib.request

marker = os.environ["TRIALBOOK_MARKER"]
report = {"env": dict(os.environ)}

def post(url, body, headers):
    req = urllib.request.Request(url, json.dumps(body).encode(), {"content-type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")

def chat(text, key=None):
    return post(os.environ["OPENAI_BASE_URL"] + "/chat/completions",
                {"model": "gpt-anything", "messages": [{"role": "user", "content": text}]},
                {"authorization": "Bearer " + (key or os.environ["OPENAI_API_KEY"])})

status, openai = chat("openai shape " + marker)
report["openai"] = [status, openai]
status, anthropic = post(os.environ["ANTHROPIC_BASE_URL"] + "/v1/messages",
                         {"model": "claude-anything", "max_tokens": 64, "system": "You write files.",
                          "messages": [{"role": "user", "content": "anthropic shape " + marker}]},
                         {"x-api-key": os.environ["ANTHROPIC_API_KEY"], "anthropic-version": "2023-06-01"})
report["anthropic"] = [status, anthropic]
report["bad_key"] = chat("bad key " + marker, key="tb-trial-guessed")[0]
# the proxy's management routes are not for trials (a new model, the config, other keys)
report["admin"] = [post(os.environ["OPENAI_BASE_URL"].removesuffix("/v1") + route, {"model_name": "x"},
                        {"authorization": "Bearer " + os.environ["OPENAI_API_KEY"]})[0]
                   for route in ("/model/new", "/key/generate", "/config/update")]
report["responses"] = post(os.environ["OPENAI_BASE_URL"] + "/responses",
                           {"model": "gpt-anything", "instructions": "Answer.", "input": "responses shape " + marker},
                           {"authorization": "Bearer " + os.environ["OPENAI_API_KEY"]})
report["third"] = chat("third " + marker)[0]
# nothing but the gateway: the model server's own port and an outside address
report["direct"] = []
for host, port in (("127.0.0.1", int(os.environ["SERVER_PORT"])), ("1.1.1.1", 80)):
    try:
        socket.create_connection((host, port), timeout=3).close()
        report["direct"].append("connected")
    except OSError as exc:
        report["direct"].append(type(exc).__name__)
try:
    open(os.path.join(os.environ["TRIALBOOK_AGENT_DIR"], "tamper"), "w")
    report["agent_dir"] = "writable"
except OSError:
    report["agent_dir"] = "read-only"
with open("/logs/agent/report.json", "w") as fh:
    json.dump(report, fh)
with open("/app/hello.txt", "w") as fh:
    fh.write(openai["choices"][0]["message"]["content"] + "\n")
'''

INSTALL = f"mkdir -p \"$TRIALBOOK_AGENT_DIR/bin\"\ncat > \"$TRIALBOOK_AGENT_DIR/bin/hello-agent\" <<'EOF'\n{PROGRAM}EOF\n" \
          "chmod 755 \"$TRIALBOOK_AGENT_DIR/bin/hello-agent\"\necho installed {version}"


def cli_variant(server: ScriptedLLMServer, name: str, model: str, **settings: Any) -> dict[str, Any]:
    return {"name": name, "agent": "cli", "model": model, "api_base": server.base_url, "api_key_env": KEY_ENV,
            "env": {"TRIALBOOK_MARKER": f"marker-{name}", "SERVER_PORT": str(server.httpd.server_address[1])},
            "settings": {"version": "1.2.3", "install": INSTALL, "run": "hello-agent", **settings}}


@pytest.fixture
def real_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = f"sk-real-{secrets.token_hex(16)}"
    monkeypatch.setenv(KEY_ENV, key)
    return key


def test_cli_agents_through_the_gateway(tmp_path: Path, real_key: str) -> None:
    with ScriptedLLMServer(default=text("Hello, world!")) as server:
        root = make_block(tmp_path, tasks=["hello-world"], concurrency=3,
                          timeouts={"environment_setup": 30, "agent": 90, "verifier": 30},
                          variants=[cli_variant(server, "alpha", "openai/scripted-alpha"),
                                    cli_variant(server, "beta", "openai/scripted-beta", step_limit=3),
                                    # priced: 1.4e-4 USD a call, so the budget is spent after the third
                                    cli_variant(server, "gamma", "openai/scripted-gamma", cost_limit=3.5e-4,
                                                model_kwargs=PRICED)])
        job_dir = run_block(root / "config.yaml", "job").outcome.job_dir
    trials = {read_json(p)["variant"]: p.parent for p in job_dir.glob("*/trial.json")}
    assert sorted(trials) == ["alpha", "beta", "gamma"]

    # the model server saw only the real key, and each trial's calls went to its own variant's model
    assert len(server.chat_requests) == 10  # alpha: 4 calls, beta and gamma: 3 (their fourth is over budget)
    assert {r.headers["authorization"] for r in server.chat_requests} == {f"Bearer {real_key}"}
    for r in server.chat_requests:
        marker = json.dumps(r.body["messages"]).split("marker-")[1][:4]
        assert r.body["model"] == {"alph": "scripted-alpha", "beta": "scripted-beta", "gamm": "scripted-gamma"}[marker]

    for name, trial in trials.items():
        record = read_json(trial / "trial.json")
        assert record["outcome"] == "resolved", record
        report = read_json(trial / "agent" / "report.json")
        env = report["env"]
        assert env["OPENAI_BASE_URL"].startswith("http://127.0.0.1:") and env["OPENAI_API_KEY"].startswith("tb-trial-")
        assert env["ANTHROPIC_API_KEY"] == env["OPENAI_API_KEY"]
        assert real_key not in json.dumps(env)
        assert report["openai"][0] == 200 and report["anthropic"][0] == 200
        assert report["anthropic"][1]["content"][0]["text"] == "Hello, world!"
        assert report["responses"][0] == 200 and report["responses"][1]["object"] == "response"
        assert report["bad_key"] == 401
        assert report["admin"] == [403, 403, 403]
        assert report["direct"] == ["ConnectionRefusedError", "OSError"] or all(
            d != "connected" for d in report["direct"]), report["direct"]
        assert report["agent_dir"] == "read-only"
        assert record["extra"]["agent_version"] == "1.2.3"

        lines = read_litellm_log(trial / "agent" / "litellm-trajectory.jsonl")
        trial_id = f"job/{trial.name}"
        assert {ln.trial_id for ln in lines} == {trial_id}
        assert [ln.seq for ln in lines] == list(range(1, len(lines) + 1))
        texts = [json.dumps(ln.messages) for ln in lines]
        assert all(f"marker-{name}" in t for t in texts), texts  # its own calls only: no cross-talk
        assert "openai shape" in texts[0] and "anthropic shape" in texts[1] and "responses shape" in texts[2]
        assert lines[1].messages[0] == {"role": "system", "content": "You write files."}
        assert lines[2].messages == [{"role": "system", "content": "Answer."},
                                     {"role": "user", "content": f"responses shape marker-{name}"}]
        assert all(f"marker-{other}" not in t for t in texts for other in trials if other != name)
        ok = [ln for ln in lines if ln.status == "success"]
        assert all(ln.model == f"openai/scripted-{name}" for ln in ok)
        assert record["usage"]["prompt_tokens"] == 100 * len(ok)
        if name == "gamma":
            assert [ln.cost_usd for ln in ok] == [pytest.approx(CALL_COST)] * 3
            assert record["usage"]["cost_usd"] == pytest.approx(3 * CALL_COST)
        assert record["n_turns"] == len(ok)
        traj = read_json(trial / "agent" / "trajectory.json")
        assert validate_trajectory(traj) == []
        assert sum(1 for s in traj["steps"] if s["source"] == "agent") == len(ok)
        assert all(ln.response and ln.response.content == "Hello, world!" for ln in ok)
        if name == "alpha":
            assert len(ok) == 4 and "limit" not in record["extra"]
        else:  # step_limit 3 / a budget of 2.5 calls: the fourth call is refused and logged as a failure
            assert report["third"] == 429
            assert len(ok) == 3 and record["extra"]["limit"] == {"beta": "step_limit", "gamma": "cost_limit"}[name]
            assert lines[-1].status == "failure" and lines[-1].error.status_code == 429
        assert record["extra"]["gateway"]["calls"] == record["extra"]["gateway"]["logged"] == len(lines)

    leaked = [p for p in job_dir.rglob("*") if p.is_file() and real_key.encode() in p.read_bytes()]
    assert leaked == []
    installed = list((root / ".trialbook" / "agents").iterdir())
    assert len(installed) == 1 and (installed[0] / "bin" / "hello-agent").is_file()  # one recipe, installed once
    assert AGENT_DIR.startswith("/run/")


SIMPLE_RUN = r'''python3 - <<'EOF'
import json, os, socket, urllib.request
req = urllib.request.Request(os.environ["OPENAI_BASE_URL"] + "/chat/completions",
                             json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode(),
                             {"content-type": "application/json", "authorization": "Bearer " + os.environ["OPENAI_API_KEY"]})
answer = json.loads(urllib.request.urlopen(req, timeout=60).read())["choices"][0]["message"]["content"]
try:
    socket.create_connection(("127.0.0.1", int(os.environ["SERVER_PORT"])), timeout=3).close()
    direct = "connected"
except OSError as exc:
    direct = type(exc).__name__
json.dump({"direct": direct, "env": dict(os.environ)}, open("/logs/agent/report.json", "w"))
open("/app/hello.txt", "w").write(answer + "\n")
EOF'''


def test_gateway_as_an_unprivileged_user(real_key: str) -> None:
    """The same path when trialbook runs as ``nobody``: the sandbox is a user namespace, the proxy ours."""
    if not running_as_root():
        pytest.fail("this test starts the unprivileged run itself and must run as root (it does in CI)")
    tmp = shared_tmpdir()
    try:
        with ScriptedLLMServer(default=text("Hello, world!")) as server:
            v = cli_variant(server, "solo", "openai/scripted")
            v["settings"] = {"run": SIMPLE_RUN}
            root = make_block(tmp, tasks=["hello-world"], variants=[v],
                              timeouts={"environment_setup": 30, "agent": 90, "verifier": 30})
            give(tmp)
            res = trialbook(["run", "--job", "job", "--json"], cwd=root, unprivileged=True,
                            env={KEY_ENV: real_key}, timeout=400)
            assert res.returncode == 0, res.stderr[-3000:]
        trial = root / "artifacts" / "jobs" / "job" / "hello-world"
        record = read_json(trial / "trial.json")
        assert record["outcome"] == "resolved", record
        report = read_json(trial / "agent" / "report.json")
        assert report["direct"] != "connected" and real_key not in json.dumps(report["env"])
        lines = read_litellm_log(trial / "agent" / "litellm-trajectory.jsonl")
        assert [(ln.trial_id, ln.status) for ln in lines] == [("job/hello-world", "success")]
        assert [r.headers["authorization"] for r in server.chat_requests] == [f"Bearer {real_key}"]
        leaked = [p for p in root.rglob("*") if p.is_file() and real_key.encode() in p.read_bytes()]
        assert leaked == []
    finally:
        remove(tmp)


def _post(url: str, key: str) -> int:
    req = urllib.request.Request(url + "/v1/chat/completions", json.dumps(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode(),
        {"content-type": "application/json", "authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_closed_keys_network_on_and_a_dead_gateway(tmp_path: Path, real_key: str) -> None:
    async def scenario(server: ScriptedLLMServer) -> TrialRecord:
        v = VariantConfig(name="v", agent="cli", model="openai/scripted", api_base=server.base_url,
                          api_key_env=KEY_ENV)
        gateway = await Gateway([v]).start()
        try:
            first = gateway.open_trial("job/one", v, tmp_path / "one.jsonl")
            assert await asyncio.to_thread(_post, gateway.url, first.key) == 200
            state = await first.close()
            assert (state.accepted, state.logged, state.settled) == (1, 1, True)
            assert await asyncio.to_thread(_post, gateway.url, first.key) == 401  # revoked with its trial
            assert len(read_litellm_log(tmp_path / "one.jsonl")) == 1  # the refused call is nobody's line
            # with the network on, the sandbox shares the host's: the bridge takes a free port there
            net = gateway.open_trial("job/net", v, tmp_path / "net.jsonl")
            box = Sandbox(mounts=[Mount(host, target, writable=False) for target, host in net.ro_dirs().items()],
                          network=True, workdir="/tmp", env=net.env(), wrapper=net.wrapper())
            call = ('curl -s -o /dev/null -w "%{http_code}" "$OPENAI_BASE_URL/chat/completions" '
                    '-H "authorization: Bearer $OPENAI_API_KEY" -H "content-type: application/json" '
                    '-d \'{"model": "m", "messages": [{"role": "user", "content": "net"}]}\'')
            ran = await box.exec(["bash", "-c", f"{call}; {call}"], timeout_s=60, stdout_path=tmp_path / "net.out")
            assert ran.exit_code == 0 and (tmp_path / "net.out").read_text() == "200200"
            assert (await net.close()).logged == 2 and len(read_litellm_log(tmp_path / "net.jsonl")) == 2
            second = gateway.open_trial("job/two", v, tmp_path / "two.jsonl")
            assert gateway._proc is not None
            os.killpg(gateway._proc.pid, signal.SIGKILL)
            await gateway._proc.wait()
            record = TrialRecord(trial_name="two", job="job", task="t", variant="v", agent="cli", attempt=1)
            await _close_gateway(second, AgentResult(exit_code=1), record)
            return record
        finally:
            await gateway.stop()
            assert not gateway.root.exists()  # the key files and the socket go with the job

    with ScriptedLLMServer(default=text("hi")) as server:
        record = asyncio.run(scenario(server))
    assert record.outcome == "infra_error" and "model gateway (LiteLLM proxy) stopped" in (record.reason or "")
