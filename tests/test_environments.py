"""The runner drives any :class:`Environment` the same way: tested with the in-process fake
(no bubblewrap, no engine), plus how ``environment.type`` / ``import_path`` pick the class."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import make_block, requires_bwrap, write_task

from trialbook.app.pipeline import run_block
from trialbook.config import EnvironmentConfig
from trialbook.errors import ConfigError
from trialbook.run.environments.base import EnvironmentSpec
from trialbook.run.environments.fake import FakeEnvironment
from trialbook.run.environments.local_env import LocalEnvironment
from trialbook.run.environments.registry import environment_class

FAKE = "trialbook.run.environments.fake:FakeEnvironment"


def _program(env: FakeEnvironment, command: list[str], out: Any) -> int:
    """solve.sh writes the answer; test.sh grades it; ``bash -c`` plants a reward (a hostile agent)."""
    if command == ["bash", "/solution/solve.sh"]:
        env.path("/app/answer.txt").write_text("42")
    elif command == ["bash", "/tests/test.sh"]:
        answer = env.path("/app/answer.txt")
        ok = answer.is_file() and answer.read_text() == "42"
        env.path("/logs/verifier/reward.txt").write_text("1" if ok else "0")
        print("graded", file=out)
    elif command[:2] == ["bash", "-c"]:
        env.path("/logs/verifier").mkdir(parents=True, exist_ok=True)
        env.path("/logs/verifier/reward.txt").write_text("1")
        env.path("/logs/agent/note.txt").write_text(env.env_vars["TRIALBOOK_TASK"])
    return 0


def _block(tmp_path: Path, variants: list[dict[str, Any]], **extra: Any) -> Path:
    tasks = tmp_path / "src"
    write_task(tasks, "answer", test_sh="exit 1\n", solve_sh="exit 1\n")
    return make_block(tmp_path, extra_tasks_dir=tasks, variants=variants,
                      environment={"type": "local", "import_path": FAKE}, **extra)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> type[FakeEnvironment]:
    monkeypatch.setattr(FakeEnvironment, "program", staticmethod(_program))
    monkeypatch.setattr(FakeEnvironment, "calls", [])
    return FakeEnvironment


def _trials(job_dir: Path) -> dict[str, dict[str, Any]]:
    return {json.loads(p.read_text())["variant"]: json.loads(p.read_text()) for p in job_dir.glob("*/trial.json")}


def test_phases_in_order_with_each_directory_only_in_its_phase(tmp_path: Path, fake: type[FakeEnvironment]) -> None:
    root = _block(tmp_path, [{"name": "oracle", "agent": "oracle"}, {"name": "nop", "agent": "nop"},
                             {"name": "planter", "agent": "command", "command": "plant"}])
    out = run_block(root / "config.yaml", "j").outcome
    trials = _trials(out.job_dir)
    assert {v: t["outcome"] for v, t in trials.items()} == {
        "oracle": "resolved", "nop": "unresolved", "planter": "unresolved"}
    # the planted reward never reached the verifier; what the agent left in /logs/agent came back
    assert trials["planter"]["extra"]["discarded_before_verifier"] == ["reward.txt"]
    assert (out.job_dir / "answer__planter__1" / "agent" / "note.txt").read_text() == "answer"
    assert (out.job_dir / "answer__oracle__1" / "evaluation" / "verifier" / "reward.txt").read_text() == "1"
    by_trial: dict[str, list[tuple[str, Any]]] = {}
    for trial, event, detail in fake.calls:
        by_trial.setdefault(trial, []).append((event, detail))
    for trial, events in by_trial.items():
        names = [e for e, _ in events]
        assert names[0] == "start" and names[-1] == "stop" and names.count("stop") == 1, (trial, names)
        for event, detail in events:
            if event == "exec":
                phase, _command, visible = detail
                assert ("/tests" in visible) == (phase == "verifier"), (trial, detail)
                assert "/solution" not in visible or (phase == "agent" and "oracle" in trial), (trial, detail)
    uploads = [(t, d) for t, e, d in fake.calls if e == "upload"]
    assert sorted(d[1] for t, d in uploads if "oracle" in t) == ["/solution", "/tests"]
    assert all(d[1] == "/tests" for t, d in uploads if "oracle" not in t)
    assert not (root / ".trialbook" / "scratch" / "j").exists() or not any((root / ".trialbook" / "scratch" / "j").iterdir())


def test_agent_timeout_and_verifier_timeout(tmp_path: Path, fake: type[FakeEnvironment],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    async def slow(env: FakeEnvironment, command: list[str], out: Any) -> int:
        if command[:2] == ["bash", "-c"] or command == ["bash", "/tests/test.sh"]:
            await asyncio.sleep(30)
        return 0

    monkeypatch.setattr(FakeEnvironment, "program", staticmethod(slow))
    root = _block(tmp_path, [{"name": "slow", "agent": "command", "command": "sleep"},
                             {"name": "nop", "agent": "nop"}],
                  timeouts={"environment_setup": 30, "agent": 1, "verifier": 1})
    trials = _trials(run_block(root / "config.yaml", "j").outcome.job_dir)
    assert trials["slow"]["outcome"] == "timeout" and trials["slow"]["exception"]["type"] == "AgentTimeoutError"
    assert trials["nop"]["outcome"] == "timeout" and trials["nop"]["exception"]["type"] == "VerifierTimeoutError"


def test_environment_type_and_import_path_pick_the_class() -> None:
    assert environment_class(EnvironmentConfig()) is LocalEnvironment
    assert environment_class(EnvironmentConfig(import_path=FAKE)) is FakeEnvironment
    assert environment_class(EnvironmentConfig(type="podman")).__name__ == "PodmanEnvironment"
    assert environment_class(EnvironmentConfig(type="docker")).engine == "docker"
    with pytest.raises(ConfigError, match="unknown environment.type 'nope'; known: docker, local, podman"):
        environment_class(EnvironmentConfig(type="nope"))
    with pytest.raises(ConfigError, match="not a subclass of trialbook.run.environments.base.Environment"):
        environment_class(EnvironmentConfig(import_path="trialbook.run.environments.local:Sandbox"))


def test_bad_environment_import_path_is_a_one_line_error_at_job_start(tmp_path: Path) -> None:
    root = _block(tmp_path, [{"name": "nop", "agent": "nop"}])
    config = (root / "config.yaml").read_text().replace(FAKE, "trialbook.run.environments.fake:Nope")
    (root / "config.yaml").write_text(config)
    with pytest.raises(ConfigError, match="trialbook.run.environments.fake has no 'Nope'"):
        run_block(root / "config.yaml", "j")
    assert not (root / "artifacts" / "jobs" / "j").exists()


@requires_bwrap
def test_local_upload_and_download_anywhere_never_follow_a_planted_link(tmp_path: Path) -> None:
    async def main() -> None:
        spec = EnvironmentSpec(job_name="j", trial_name="t", task_name="t", task_dir=None, instruction="hi",
                               config=EnvironmentConfig(), scratch=tmp_path / "scratch",
                               seed=lambda app: (app / "sub").mkdir())
        env = LocalEnvironment(spec)
        await env.start()
        try:
            src = tmp_path / "in.txt"
            src.write_text("uploaded\n")
            await env.upload(src, "/app/sub/in.txt")        # a writable place: copied by the sandbox
            await env.upload(src, "/data/extra.txt")        # elsewhere: a read-only private copy
            out = tmp_path / "out.txt"
            res = await env.exec(["bash", "-c", "cat /app/sub/in.txt /data/extra.txt; ln -s /etc/passwd /app/sub/link;"
                                  " echo made > /app/sub/made.txt; echo x > /data/extra.txt"],
                                 timeout_s=30, stdout_path=out)
            assert res.exit_code == 1 and out.read_text().startswith("uploaded\nuploaded\n")
            got = tmp_path / "got"
            notes = await env.download("/app/sub", got)
            assert sorted(p.name for p in got.iterdir()) == ["in.txt", "made.txt"]
            assert (got / "made.txt").read_text() == "made\n"
            assert any("link" in n and "not followed" in n for n in notes), notes
            with pytest.raises(ValueError, match="cannot upload to /etc/x"):
                await env.upload(src, "/etc/x")
        finally:
            await env.stop()
        assert not spec.scratch.exists()

    asyncio.run(main())


@requires_bwrap
def test_agent_access_is_the_agent_phases_only(tmp_path: Path) -> None:
    """What an installed agent or the model gateway gets (variables, a read-only directory, a command
    prefix) is there in the agent phase and gone in the verifier's: the grader never holds the key."""
    async def main() -> tuple[str, str]:
        spec = EnvironmentSpec(job_name="j", trial_name="t", task_name="t", task_dir=None, instruction="hi",
                               config=EnvironmentConfig(), scratch=tmp_path / "scratch")
        shared = tmp_path / "shared"
        shared.mkdir()
        (shared / "tool.txt").write_text("tool\n")
        env = LocalEnvironment(spec)
        await env.start()
        probe = ["bash", "-c", 'echo "key=${TRIAL_KEY-none} prefix=${PREFIXED-no}"; cat /run/test-agent/tool.txt;'
                 " echo planted > /run/test-agent/tool.txt"]
        try:
            await env.begin_phase("agent")
            env.add_agent_access(env={"TRIAL_KEY": "k-1"}, ro_dirs={"/run/test-agent": shared},
                                 wrapper=["env", "PREFIXED=yes"])
            await env.exec(probe, timeout_s=30, stdout_path=tmp_path / "agent.out")
            await env.end_phase()
            await env.reset_dir("/logs/verifier")
            await env.begin_phase("verifier")
            await env.exec(probe, timeout_s=30, stdout_path=tmp_path / "verifier.out")
            await env.end_phase()
        finally:
            await env.stop()
        assert (shared / "tool.txt").read_text() == "tool\n"  # read-only for the agent
        return (tmp_path / "agent.out").read_text(), (tmp_path / "verifier.out").read_text()

    agent, verifier = asyncio.run(main())
    assert agent.startswith("key=k-1 prefix=yes\ntool\n"), agent
    assert verifier.startswith("key=none prefix=no\n") and "tool\n" not in verifier, verifier


def test_environments_without_agent_access_refuse_gateway_agents_before_any_trial(tmp_path: Path) -> None:
    root = make_block(tmp_path, tasks=["hello-world"], environment={"type": "local", "import_path": FAKE},
                      variants=[{"name": "c", "agent": "cli", "model": "openai/m",
                                 "settings": {"run": "true"}}])
    with pytest.raises(ConfigError, match="variant c: agent cli needs .* environment type fake cannot"):
        run_block(root / "config.yaml", "j")
    assert not (root / "artifacts" / "jobs" / "j").exists()
