"""Secrets: exactly the values a config hands out are scrubbed from every byte written or printed."""

from __future__ import annotations

import json
import os
import secrets as pysecrets
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import make_block, requires_bwrap
from scripted_llm_server import ScriptedLLMServer, http_error

from trialbook import secrets
from trialbook.config import redact_config

KEY_ENV = "TRIALBOOK_TEST_PROVIDER_KEY"


def test_config_secrets_are_exactly_what_the_config_hands_out() -> None:
    env = {KEY_ENV: "sk-live-123456", "PW": "hunter2-pw", "TOKENIZERS_PARALLELISM": "false",
           "UNRELATED_TOKEN": "not-referenced-999"}
    raw = {"variants": [{"name": "a", "agent": "mini-swe-agent", "api_key_env": KEY_ENV,
                         "settings": {"api_key": "literal-key-777", "max_tokens": 4096},
                         "env": {"DB": "postgres://u:${PW}@db/x", "MODE": "fast-mode"}}],
           "sft_conversion": {"tokenizer": "o200k_base"}, "secrets": ["variants.0.env.MODE"]}
    found = secrets.config_secrets(raw, env)
    assert found == sorted(["sk-live-123456", "hunter2-pw", "literal-key-777", "fast-mode"])
    snap = redact_config(raw)
    assert snap["sft_conversion"]["tokenizer"] == "o200k_base"  # a *token* word is not a credential
    assert snap["variants"][0]["settings"]["max_tokens"] == 4096
    assert snap["variants"][0]["settings"]["api_key"] == secrets.REDACTED
    assert snap["variants"][0]["env"]["MODE"] == secrets.REDACTED


def test_scrub_file_streams_and_catches_values_cut_by_blocks(tmp_path: Path) -> None:
    found = secrets.SecretSet(["sk-ABCDEFGHIJ"])
    path = tmp_path / "out.txt"
    path.write_bytes((b"." * 4093 + b"sk-ABCDEFGHIJ") * 300)
    path.chmod(0o640)
    assert secrets.scrub_file(path, found, chunk=4096)
    assert b"sk-ABC" not in path.read_bytes() and path.read_bytes().count(b"***REDACTED***") == 300
    assert path.stat().st_mode & 0o777 == 0o640


@requires_bwrap
def test_no_secret_in_any_written_or_printed_byte(tmp_path: Path) -> None:
    key = f"sk-test-{pysecrets.token_hex(16)}"
    password = f"pw-{pysecrets.token_hex(8)}"
    echo = http_error(401, f"Incorrect API key provided: {key}. You can find your API key at ...")
    with ScriptedLLMServer([echo, echo, echo], default=echo) as server:
        base = server.base_url.replace("http://", f"http://trialbook:{password}@")
        root = make_block(tmp_path, tasks=["hello-world"], variants=[
            {"name": "llm", "agent": "mini-swe-agent", "model": "openai/scripted", "api_base": base,
             "api_key_env": KEY_ENV, "settings": {"retry_wait_s": 0.01}},
            {"name": "printer", "agent": "command", "command": "echo token is $SERVICE_TOKEN"}],
            environment={"env": {"SERVICE_TOKEN": f"${{{KEY_ENV}}}"}},
            secrets=["variants.0.api_base"], sft_conversion={"tokenizer": "cl100k_base"})
        env = {**os.environ, KEY_ENV: key, "TOKENIZERS_PARALLELISM": "false"}
        outputs = []
        for args in (["run", "--job", "j", "--json"], ["run", "--job", "j"], ["show", "--json"], ["show"],
                     ["analyze", "--trial", "1"], ["analyze", "--trial", "2", "--json"], ["analyze-job"],
                     ["sql", "SELECT * FROM all_trials", "--json"], ["archive", "--json"], ["status"]):
            res = subprocess.run([sys.executable, "-m", "trialbook.cli.main", *args], cwd=root, env=env,
                                 capture_output=True, text=True, timeout=300)
            assert res.returncode == 0, (args, res.stderr[-2000:])
            outputs.append(res.stdout + res.stderr)
    trial = json.loads((root / "artifacts" / "jobs" / "j" / "hello-world__llm__1" / "trial.json").read_text())
    assert trial["outcome"] == "agent_error" and "Incorrect API key provided: ***REDACTED***" in trial["reason"]
    printed = (root / "artifacts" / "jobs" / "j" / "hello-world__printer__1" / "agent" / "stdout.txt").read_text()
    assert printed == "token is ***REDACTED***\n"
    user_files = {root / "config.yaml"}
    for path in root.rglob("*"):
        if path.is_file() and path not in user_files:
            data = path.read_bytes()
            assert key.encode() not in data and password.encode() not in data, path
    for text in outputs:
        assert key not in text and password not in text
    snapshot = yaml.safe_load((root / "artifacts" / "jobs" / "j" / "config.yaml").read_text())
    assert snapshot["sft_conversion"]["tokenizer"] == "cl100k_base"
    verdict = (root / "artifacts" / "jobs" / "j" / "hello-world__printer__1" / "trial.json").read_text()
    assert '"passed":' not in verdict or "REDACTED" not in verdict.split('"passed":')[1][:20]
