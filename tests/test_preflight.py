"""A model server that is down or refuses the key stops the job before any trial, in seconds."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from conftest import make_block

KEY_ENV = "TRIALBOOK_PREFLIGHT_KEY"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(root: Path, key: str = "sk-preflight-test") -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", KEY_ENV: key, "HOME": str(root)}
    return subprocess.run([sys.executable, "-m", "trialbook.cli.main", "run", "--job", "j", "--json"],
                          cwd=root, capture_output=True, text=True, env=env, timeout=120)


def _variant(api_base: str) -> dict:
    return {"name": "llm", "agent": "mini-swe-agent", "model": "openai/scripted", "api_base": api_base,
            "api_key_env": KEY_ENV}


def test_unreachable_server_stops_the_job_before_any_trial(tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{_closed_port()}/v1"
    root = make_block(tmp_path, tasks=["hello-world"], variants=[_variant(base)])
    started = time.monotonic()
    res = _run(root)
    assert res.returncode == 5, res.stderr
    assert time.monotonic() - started < 30
    err = json.loads(res.stderr)
    assert err["error"].startswith(f"variant llm: model server {base} does not answer (")
    assert "no trial was run" in err["error"]
    assert not list((root / "artifacts" / "jobs").glob("*/*/trial.json"))


def test_server_refusing_the_key_stops_the_job(tmp_path: Path) -> None:
    class Refuse(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/v1"
        root = make_block(tmp_path, tasks=["hello-world"], variants=[_variant(base)])
        res = _run(root, key="sk-wrong-key-1234")
    finally:
        server.shutdown()
    assert res.returncode == 5, res.stderr
    message = json.loads(res.stderr)["error"]
    assert message == f"variant llm: model server {base} refused the API key (HTTP 401); no trial was run"
    assert "sk-wrong-key-1234" not in res.stderr
