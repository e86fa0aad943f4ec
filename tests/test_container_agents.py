"""Installed agents and the model gateway in real podman containers with the network off.

A ``cli`` agent (a stdlib Python program installed once per block, mounted read-only into each
container) calls the job's gateway through the bridge from inside a ``network: none`` container,
against the scripted OpenAI-compatible server on the host. Checked: the task is solved, every
call is a line of its own trial's log, the real key is nowhere in the container or the trial
tree, nothing but the gateway is reachable, the verifier gets no key, a step budget is enforced,
an image without python3 is a clear infra_error, and no container is left.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from conftest import make_block, requires_bwrap, write_task
from container_engine import ENGINE_FLAGS, RUN_FLAGS, base_image, podman
from scripted_llm_server import ScriptedLLMServer, text
from test_gateway import INSTALL

from trialbook.app.pipeline import run_block
from trialbook.config import EnvironmentConfig
from trialbook.jsonio import read_json
from trialbook.model.atif_validate import validate_trajectory
from trialbook.run.environments.base import EnvironmentSpec
from trialbook.run.environments.container import PodmanEnvironment, job_key
from trialbook.run.llm_log import read_litellm_log

pytestmark = requires_bwrap  # the agent's install recipe runs in the host's sandbox

PODMAN = {"type": "podman", "engine_flags": ENGINE_FLAGS, "run_flags": RUN_FLAGS}
KEY_ENV = "TEST_CONTAINER_GATEWAY_KEY"

#: The verifier: solved when the agent wrote the model's answer; it records what it was given.
VERIFY = """\
#!/bin/sh
env > /logs/verifier/env.txt
if [ "$(cat /app/hello.txt 2>/dev/null)" = "Hello, world!" ]; then echo 1 > /logs/verifier/reward.txt
else echo 0 > /logs/verifier/reward.txt; fi
"""


def _task(root: Path, name: str, image: str) -> None:
    d = write_task(root, name, test_sh=VERIFY, instruction="Write the model's greeting to /app/hello.txt.")
    (d / "environment" / "Dockerfile").write_text(f"FROM {image}\nWORKDIR /app\n")


def _variant(server: ScriptedLLMServer, name: str, **settings: Any) -> dict[str, Any]:
    return {"name": name, "agent": "cli", "model": f"openai/scripted-{name}", "api_base": server.base_url,
            "api_key_env": KEY_ENV,
            "env": {"TRIALBOOK_MARKER": f"marker-{name}", "SERVER_PORT": str(server.httpd.server_address[1])},
            "settings": {"version": "1.2.3", "install": INSTALL, "run": "hello-agent", **settings}}


def test_cli_agent_through_the_gateway_in_network_less_containers(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    with_python, bare = base_image("python"), base_image()
    real_key = f"sk-real-{secrets.token_hex(16)}"
    monkeypatch.setenv(KEY_ENV, real_key)
    src = tmp_path / "src"
    _task(src, "hello", with_python)
    _task(src, "no-python", bare)
    with ScriptedLLMServer(default=text("Hello, world!")) as server:
        root = make_block(tmp_path, extra_tasks_dir=src, concurrency=2, environment=PODMAN,
                          timeouts={"environment_setup": 60, "agent": 90, "verifier": 30},
                          variants=[_variant(server, "alpha"), _variant(server, "beta", step_limit=3)])
        job_dir = run_block(root / "config.yaml", "job").outcome.job_dir
    trials = {(r["task"], r["variant"]): p.parent for p in job_dir.glob("*/trial.json") if (r := read_json(p))}
    assert len(trials) == 4

    # the model server saw only the real key; alpha made 4 calls, beta 3 (its fourth is over budget)
    assert len(server.chat_requests) == 7
    assert {r.headers["authorization"] for r in server.chat_requests} == {f"Bearer {real_key}"}
    for name in ("alpha", "beta"):
        trial = trials[("hello", name)]
        record = read_json(trial / "trial.json")
        assert record["outcome"] == "resolved", (record, (trial / "agent" / "stdout.txt").read_text()[-2000:])
        assert record["extra"]["environment"]["type"] == "podman"
        report = read_json(trial / "agent" / "report.json")
        env = report["env"]
        assert env["OPENAI_BASE_URL"].startswith("http://127.0.0.1:") and env["OPENAI_API_KEY"].startswith("tb-trial-")
        assert real_key not in json.dumps(env)
        assert report["openai"][0] == 200 and report["anthropic"][0] == 200
        assert report["responses"][0] == 200 and report["bad_key"] == 401
        assert report["admin"] == [403, 403, 403]
        assert all(d != "connected" for d in report["direct"]), report["direct"]  # the host's server, 1.1.1.1
        assert report["agent_dir"] == "read-only"
        lines = read_litellm_log(trial / "agent" / "litellm-trajectory.jsonl")
        assert {ln.trial_id for ln in lines} == {f"job/{trial.name}"}
        assert all(f"marker-{name}" in json.dumps(ln.messages) for ln in lines)  # its own calls only
        ok = [ln for ln in lines if ln.status == "success"]
        assert all(ln.model == f"openai/scripted-{name}" for ln in ok)
        assert len(ok) == (4 if name == "alpha" else 3)
        if name == "beta":
            assert report["third"] == 429 and record["extra"]["limit"] == "step_limit"
        assert record["extra"]["gateway"] == {"calls": len(lines), "logged": len(lines)}
        assert validate_trajectory(read_json(trial / "agent" / "trajectory.json")) == []
        verifier_env = (trial / "evaluation" / "verifier" / "env.txt").read_text()
        assert "tb-trial-" not in verifier_env and "OPENAI_BASE_URL" not in verifier_env  # the agent's only

        # an image without python3 cannot run the bridge: one clear line, an infra error, no model call
        missing = read_json(trials[("no-python", name)] / "trial.json")
        assert missing["outcome"] == "infra_error", missing
        assert "needs python3 in the task's image" in missing["reason"] and "environment/Dockerfile" in missing["reason"]
        assert "nor a sh" not in missing["reason"]

    leaked = [p for p in job_dir.rglob("*") if p.is_file() and real_key.encode() in p.read_bytes()]
    assert leaked == []
    key = job_key(root / ".trialbook" / "scratch" / "job")
    assert podman("ps", "-a", "-q", "--filter", f"label=trialbook.job={key}").stdout.split() == []


def test_agent_clis_in_a_network_less_container(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real Claude Code and Codex (tests/test_gateway_clis.py) in a container whose image has node
    and python3: installed once on the host, mounted read-only, their calls through the gateway."""
    from test_gateway_clis import AVAILABLE, CLIS, responder, variant

    if not AVAILABLE:
        pytest.skip("neither Claude Code nor Codex is in .cache/agent-clis/ (dev/setup.sh --test installs them)")
    image = base_image("python", "node")
    real_key = f"sk-real-{secrets.token_hex(16)}"
    monkeypatch.setenv("TEST_GATEWAY_CLI_KEY", real_key)
    src = tmp_path / "src"
    _task(src, "hello", image)
    prefetched = str(Path(__file__).resolve().parent.parent / ".cache" / "agent-clis")
    with ScriptedLLMServer(responder=responder) as server:
        root = make_block(tmp_path, extra_tasks_dir=src, concurrency=2,
                          environment={**PODMAN, "ro_binds": [prefetched]},
                          timeouts={"environment_setup": 60, "agent": 180, "verifier": 30},
                          variants=[variant(name, server) for name in AVAILABLE])
        job_dir = run_block(root / "config.yaml", "job").outcome.job_dir
    assert {r.headers["authorization"] for r in server.chat_requests} == {f"Bearer {real_key}"}
    n_lines = 0
    for trial in sorted(p.parent for p in job_dir.glob("*/trial.json")):
        record = read_json(trial / "trial.json")
        assert record["outcome"] == "resolved", (record, (trial / "agent" / "stdout.txt").read_text()[-3000:],
                                                 (trial / "agent" / "stderr.txt").read_text()[-3000:])
        assert record["extra"]["environment"]["image"].startswith("localhost/trialbook/hello:")
        lines = read_litellm_log(trial / "agent" / "litellm-trajectory.jsonl")
        n_lines += len(lines)
        assert {ln.trial_id for ln in lines} == {f"job/{trial.name}"} and len(lines) >= 2
        calls = [c for ln in lines if ln.response for c in ln.response.tool_calls or []]
        assert len(calls) == 1 and "/app/hello.txt" in (calls[0].function.arguments or "")
        assert list((trial / "agent").glob(CLIS[record["variant"]][1])), "no native session log"
    assert n_lines == len(server.chat_requests) > 0
    leaked = [p for p in job_dir.rglob("*") if p.is_file() and real_key.encode() in p.read_bytes()]
    assert leaked == []


def test_agent_access_is_mounted_with_the_container_and_refused_after(tmp_path: Path) -> None:
    """No engine needed: what ``podman run`` is given, and a directory given too late is one clear error."""
    agent_dir, sock_dir, bound = (tmp_path / n for n in ("agent", "sock", "data"))
    for d in (agent_dir, sock_dir, bound):
        d.mkdir()
    spec = EnvironmentSpec(job_name="j", trial_name="t", task_name="t", task_dir=None, instruction="hi",
                           config=EnvironmentConfig(type="podman", ro_binds=[str(bound)]), scratch=tmp_path / "s" / "t")
    env = PodmanEnvironment(spec)
    env.add_agent_access(env={"OPENAI_API_KEY": "tb-trial-x"}, ro_dirs={"/run/gw": sock_dir},
                         wrapper=["/usr/bin/python3", "/run/bridge/bridge.py", "/run/gw/gateway.sock", "--"])
    env.add_agent_access(ro_dirs={"/run/trialbook-agent": agent_dir})
    env.container, env.image = "c", "img"
    args = env._run_args()
    volumes = {args[i + 1] for i, a in enumerate(args) if a == "-v"}
    assert {f"{sock_dir}:/run/gw:ro", f"{agent_dir}:/run/trialbook-agent:ro", f"{bound}:{bound}:ro"} <= volumes
    assert not any("tb-trial-x" in a for a in args)  # the key travels with each exec of the agent phase only
    env.add_agent_access(ro_dirs={"/run/gw": sock_dir}, env={"MORE": "1"})  # the same mount again: fine
    with pytest.raises(ValueError, match="mounts host directories when the container is made"):
        env.add_agent_access(ro_dirs={"/run/late": tmp_path})
    for target in ("/app", "/logs/agent", "/tests/x", "relative"):
        with pytest.raises(ValueError, match=f"cannot mount a host directory at '{target}'"):
            PodmanEnvironment(spec).add_agent_access(ro_dirs={target: tmp_path})
