"""A real S3-compatible server for tests: moto's server mode on 127.0.0.1, offline.

``s3_server`` (module-wide) starts ``moto.server.ThreadedMotoServer`` on a free port;
``s3_env`` (per test) points the standard AWS variables at it with test credentials whose
values are distinctive, so a test can grep every written file for them. Credentials reach
trialbook only through those variables, as they would for a user.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ACCESS_KEY = "AKIATESTSTOREKEY0001"
SECRET_KEY = "sEcReT-store-test-value-8f3a1c"


@dataclass
class S3Env:
    """The running server and the environment a client needs to reach it."""

    endpoint: str
    env: dict[str, str]

    def fs(self) -> Any:
        """A fresh s3fs file system on the server (no listing cache)."""
        import s3fs

        return s3fs.S3FileSystem(key=self.env["AWS_ACCESS_KEY_ID"], secret=self.env["AWS_SECRET_ACCESS_KEY"],
                                 client_kwargs={"endpoint_url": self.endpoint}, use_listings_cache=False,
                                 skip_instance_cache=True)

    def new_bucket(self) -> str:
        name = f"tb-{uuid.uuid4().hex[:12]}"
        self.fs().mkdir(name)
        return name

    def objects(self, root: str) -> dict[str, tuple[int, str, Any]]:
        """Every object under ``root``: key -> (size, ETag, LastModified)."""
        found = self.fs().find(root, detail=True)
        return {k: (v["size"], v["ETag"], v["LastModified"]) for k, v in found.items()}

    def cli(self, *args: str, cwd: Path, extra_env: dict[str, str] | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the ``trialbook`` CLI in a subprocess with this environment."""
        env = {**os.environ, **self.env, **(extra_env or {})}
        proc = subprocess.run([sys.executable, "-m", "trialbook.cli.main", *args], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=240)
        if check and proc.returncode != 0:
            raise AssertionError(f"trialbook {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
        return proc


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module", name="s3_server")
def s3_server_fixture() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(name="s3_env")
def s3_env_fixture(s3_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> S3Env:
    env = {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_server,
        # nothing from the machine's own AWS setup, and a private mirror cache
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "TRIALBOOK_STORE_CACHE": str(tmp_path / "store-cache"),
    }
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return S3Env(s3_server, env)
