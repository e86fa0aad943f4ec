"""config.yaml loading, redaction, the status section, block init, and task checks."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import EXAMPLE_TASKS, write_task

from trialbook.block.init import init_block
from trialbook.block.status import read_status, update_status
from trialbook.config import REDACTED, load_config, redact_config
from trialbook.errors import ConfigError, TaskError
from trialbook.run.tasks import load_harbor_dataset, load_harbor_task


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "config.yaml"
    p.write_text("kind: eval\ntasks: [unclosed\n")
    with pytest.raises(ConfigError) as err:
        load_config(p)
    assert str(p) in str(err.value) and "invalid YAML" in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_key_and_bad_values(tmp_path: Path) -> None:
    p = tmp_path / "config.yaml"
    p.write_text("kind: eval\ntasks: {path: t}\nvariants: [{name: a, agent: nop}]\nattemps: 3\n")
    with pytest.raises(ConfigError, match="attemps: unknown key"):
        load_config(p)
    p.write_text("kind: eval\ntasks: {path: t}\nvariants: [{name: a, agent: nop}, {name: a, agent: oracle}]\n")
    with pytest.raises(ConfigError, match="repeated: a"):
        load_config(p)
    p.write_text("kind: eval\ntasks: {path: t, include: ['../x']}\nvariants: [{name: a, agent: nop}]\n")
    with pytest.raises(ConfigError, match="path separator"):
        load_config(p)
    p.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(p)


def test_redaction_env_values_secret_keys_and_marked_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    from trialbook import secrets

    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-12345-secret")
    monkeypatch.setenv("OTHER_TOKEN", "not-handed-out")
    data = {
        "variants": [{"name": "a", "api_key_env": "OPENAI_API_KEY", "api_key": "sk-literal",
                      "env": {"X": "prefix tok-12345-secret suffix", "Y": "${MY_SERVICE_TOKEN}",
                              "Z": "not-handed-out"}}],
        "environment": {"env": {"DB_URL": "postgres://u:pw@h/db"}},
        "secrets": ["environment.env.DB_URL"],
    }
    secrets.register(secrets.config_secrets(data))  # what a run captures from its config
    out = redact_config(data)
    v = out["variants"][0]
    assert v["api_key_env"] == "OPENAI_API_KEY"  # names a variable: kept
    assert v["api_key"] == REDACTED
    assert v["env"]["X"] == f"prefix {REDACTED} suffix"  # the value ${MY_SERVICE_TOKEN} hands out
    assert v["env"]["Y"] == "${MY_SERVICE_TOKEN}"  # a reference is not a secret
    assert v["env"]["Z"] == "not-handed-out"  # a variable's name alone makes nothing secret
    assert out["environment"]["env"]["DB_URL"] == REDACTED
    assert data["variants"][0]["api_key"] == "sk-literal"  # input untouched


def test_init_writes_commented_config_scripts_gitignore(tmp_path: Path) -> None:
    for kind, script in (("eval", "analyze_job.sh"), ("trajgen", "convert_trajectories.sh")):
        root = tmp_path / kind
        init_block(root, kind)
        text = (root / "config.yaml").read_text()
        assert text.count("#") > 10
        cfg = load_config(root / "config.yaml")
        assert cfg.kind == kind
        out = cfg.runtime_info.output
        if kind == "eval":
            assert out.eval_results_dir == "artifacts/jobs"
        else:
            assert out.raw_trajectories_dir and out.sft_data_dir and cfg.sft_conversion.enabled
        assert os.access(root / "scripts" / script, os.X_OK)
        assert os.access(root / "scripts" / "clean.sh", os.X_OK)
        assert "artifacts/jobs/" in (root / ".gitignore").read_text()
        assert read_status(root / "config.yaml")["state"] == "never_run"
        with pytest.raises(ConfigError, match="refusing to overwrite"):
            init_block(root, kind)


def test_status_update_keeps_comments_and_is_valid_yaml(tmp_path: Path) -> None:
    root = tmp_path / "b"
    init_block(root, "eval")
    cfg = root / "config.yaml"
    before = cfg.read_text().split("# Kept current by trialbook")[0]
    update_status(cfg, {"job": "j1", "done": 3, "counts": {"resolved": 2}})
    update_status(cfg, {"done": 4})
    text = cfg.read_text()
    assert text.startswith(before)
    assert text.count("status:") == 1
    data = yaml.safe_load(text)
    assert data["status"]["job"] == "j1" and data["status"]["done"] == 4
    load_config(cfg)  # still a valid config


def test_script_wrapper_says_when_trialbook_is_broken_or_lacks_the_command(tmp_path: Path) -> None:
    root = tmp_path / "b"
    init_block(root, "eval")
    old = tmp_path / "old-trialbook"  # starts, but predates the command
    old.write_text('#!/usr/bin/env bash\n[ "$1" = --version ] && { echo "trialbook 0.0.1"; exit 0; }\nexit 2\n')
    old.chmod(0o755)
    res = subprocess.run(["bash", str(root / "scripts" / "analyze_job.sh")], capture_output=True,
                         text=True, env={**os.environ, "TRIALBOOK": str(old)})
    assert res.returncode == 3
    assert res.stderr == "analyze_job.sh: this trialbook (trialbook 0.0.1) has no 'analyze-job' command: upgrade it\n"
    broken = tmp_path / "broken-trialbook"  # a venv whose package is gone
    broken.write_text("#!/usr/bin/env bash\necho \"ModuleNotFoundError: No module named 'trialbook'\" >&2\nexit 1\n")
    broken.chmod(0o755)
    res = subprocess.run(["bash", str(root / "scripts" / "clean.sh")], capture_output=True,
                         text=True, env={**os.environ, "TRIALBOOK": str(broken)})
    assert res.returncode == 127
    assert "does not start (ModuleNotFoundError: No module named 'trialbook')" in res.stderr


def test_broken_task_dir_is_named(tmp_path: Path) -> None:
    d = write_task(tmp_path, "t1", test_sh="echo 1 > /logs/verifier/reward.txt\n")
    (d / "tests" / "test.sh").unlink()
    with pytest.raises(TaskError) as err:
        load_harbor_task(d)
    assert str(d) in str(err.value) and "tests/test.sh" in str(err.value)
    d2 = write_task(tmp_path, "t2", test_sh="true\n")
    (d2 / "solution" / "solve.sh").unlink()
    load_harbor_task(d2)  # fine without an oracle
    with pytest.raises(TaskError, match="solution/solve.sh"):
        load_harbor_task(d2, need_solution=True)
    (d2 / "task.toml").write_text("not = [valid")
    with pytest.raises(TaskError, match="not valid TOML"):
        load_harbor_task(d2)


def test_unsafe_task_names_refused(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match="unsafe"):
        load_harbor_task(tmp_path / "..")


def test_include_exclude_globs() -> None:
    names = [t.name for t in load_harbor_dataset(EXAMPLE_TASKS, ["*-*"], ["broken-*"])]
    assert names == ["count-words", "fix-the-bug", "hello-world", "make-script"]
    with pytest.raises(TaskError, match="no task matches"):
        load_harbor_dataset(EXAMPLE_TASKS, ["nothing*"])
    t = load_harbor_task(EXAMPLE_TASKS / "hello-world")
    assert t.metadata["difficulty"] == "easy" and t.agent_timeout_s == 60


def test_atomic_writes_get_normal_permissions(tmp_path: Path) -> None:
    from trialbook.jsonio import write_json

    old = os.umask(0o022)
    try:
        write_json(tmp_path / "x.json", {"a": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "x.json").stat().st_mode & 0o777 == 0o644


def test_swe_blocks_default_to_pass_at_8() -> None:
    """VeloraHarness's pass@8: SWE-style instances without ``attempts:`` run 8 attempts; others 1; set wins."""
    from trialbook.config import SWE_DEFAULT_ATTEMPTS, BlockConfig

    base = {"kind": "eval", "variants": [{"name": "a", "agent": "nop"}]}
    swe = BlockConfig.model_validate({**base, "tasks": {"instances": "i.jsonl"}})
    assert swe.attempts == SWE_DEFAULT_ATTEMPTS == 8
    assert BlockConfig.model_validate(swe.model_dump(mode="json")).attempts == 8
    assert BlockConfig.model_validate({**base, "tasks": {"instances": "i.jsonl"}, "attempts": 1}).attempts == 1
    assert BlockConfig.model_validate({**base, "tasks": {"path": "tasks"}}).attempts == 1
