"""The per-job model gateway on the host: a LiteLLM proxy, its config, and the unix socket trials reach.

:class:`Gateway` writes the proxy's config (one model per variant, its real key named by
``os.environ/<api_key_env>``: the key stays in the proxy's environment, never in a file or
a sandbox), starts ``litellm``'s proxy server on a free loopback port, and serves a unix
socket, forwarded to that port, which is bind-mounted into every trial's sandbox
(:mod:`.bridge` turns it into a loopback URL there). :meth:`Gateway.open_trial` hands out a
trial's own key; :meth:`TrialGateway.close` waits until every call of the trial is in its
log, then revokes the key.

Everything of a gateway lives in a private temporary directory (``0700``) removed when the
job ends: ``config.yaml``, ``proxy.log``, ``keys/`` (read by the proxy's hooks, :mod:`.keys`)
and ``sock/gateway.sock``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from trialbook.config import VariantConfig
from trialbook.errors import ConfigError, ServiceUnavailableError
from trialbook.run.environments.local import give_to_sandbox
from trialbook.run.gateway import keys as keyfiles

_log = logging.getLogger("trialbook.gateway")

#: Seconds the proxy gets to start (importing the proxy alone takes 5-25 s on a busy machine).
START_TIMEOUT_S = 180.0
#: Seconds a finished trial waits for its last calls to be logged.
FLUSH_TIMEOUT_S = 15.0
#: Where the gateway's socket directory and the bridge appear inside a sandbox.
SANDBOX_SOCKET_DIR = "/run/trialbook-gateway"
SANDBOX_BRIDGE = "/run/trialbook-bridge/bridge.py"
SANDBOX_PYTHON = "/usr/bin/python3"
BRIDGE_SOURCE = Path(__file__).with_name("bridge.py")


def model_name(variant: VariantConfig) -> str:
    """The proxy's name of a variant's model (agents' own model names are replaced by it)."""
    return f"trialbook-{variant.name}"


def proxy_config(variants: list[VariantConfig]) -> dict[str, object]:
    """The proxy's ``config.yaml``: the variants' models, our auth and logging hooks, no database.

    A variant's ``settings.model_kwargs`` (validated by its agent: no secrets) are added to its
    model's parameters, e.g. the prices of a model LiteLLM does not know."""
    models = []
    for v in variants:
        assert v.model is not None
        # model_kwargs first: what makes the gateway work is not the user's to override
        params: dict[str, object] = {**dict(v.settings.get("model_kwargs") or {}), "model": v.model,
                                     "use_chat_completions_api": True}
        if v.api_base:
            params["api_base"] = v.api_base
        if v.api_key_env:
            params["api_key"] = f"os.environ/{v.api_key_env}"
        models.append({"model_name": model_name(v), "litellm_params": params})
    return {
        "model_list": models,
        "litellm_settings": {
            "callbacks": "trialbook.run.gateway.hooks.gateway_logger",
            # An Anthropic-shaped request for an OpenAI-compatible model goes out as a chat
            # completion (which every OpenAI-compatible server has), not a Responses API call.
            "use_chat_completions_url_for_anthropic_messages": True,
            "drop_params": True,
            "num_retries": 0,
        },
        "general_settings": {"custom_auth": "trialbook.run.gateway.hooks.user_api_key_auth"},
    }


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class TrialGateway:
    """One trial's access to the gateway: its key, what its sandbox gets, and the end of its calls."""

    gateway: Gateway
    key: str
    trial_id: str

    def env(self) -> dict[str, str]:
        """The sandbox's variables (the base URLs are set by the bridge, which knows its port)."""
        return {"OPENAI_API_KEY": self.key, "ANTHROPIC_API_KEY": self.key, "TRIALBOOK_GATEWAY_KEY": self.key}

    def ro_dirs(self) -> dict[str, Path]:
        """The gateway's socket directory and the bridge script, mounted read-only (sandbox path: host path)."""
        return {SANDBOX_SOCKET_DIR: self.gateway.sock_dir, str(Path(SANDBOX_BRIDGE).parent): self.gateway.bridge_dir}

    def wrapper(self) -> list[str]:
        """The prefix that starts the bridge in front of a sandboxed command."""
        return [SANDBOX_PYTHON, SANDBOX_BRIDGE, f"{SANDBOX_SOCKET_DIR}/gateway.sock", "--"]

    def state(self) -> keyfiles.TrialState:
        return keyfiles.read_state(self.gateway.keys_dir, self.key)

    async def close(self, timeout_s: float = FLUSH_TIMEOUT_S) -> keyfiles.TrialState:
        """Wait (bounded) until every accepted call of the trial is logged, then revoke the key."""
        deadline = time.monotonic() + timeout_s
        state = self.state()
        while not state.settled and time.monotonic() < deadline and self.gateway.running:
            await asyncio.sleep(0.05)
            state = self.state()
        self.revoke()
        return state

    def revoke(self) -> None:
        """End the key now (calls with it get HTTP 401)."""
        keyfiles.remove_record(self.gateway.keys_dir, self.key)


@dataclass
class Gateway:
    """A LiteLLM proxy serving one job's variants (see the module docstring)."""

    variants: list[VariantConfig]
    root: Path = field(init=False)
    port: int = field(init=False, default=0)
    _proc: asyncio.subprocess.Process | None = field(init=False, default=None)
    _server: asyncio.AbstractServer | None = field(init=False, default=None)

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def sock_dir(self) -> Path:
        return self.root / "sock"

    @property
    def bridge_dir(self) -> Path:
        return self.root / "bridge"

    @property
    def url(self) -> str:
        """The proxy's URL on the host (trials use the socket instead)."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self, *, host_python: bool = True) -> Gateway:
        """Start the proxy and the socket; a proxy that does not come up is ServiceUnavailableError.
        ``host_python``: sandboxes run the host's system, so the bridge's python3 must be on the host
        (a container's image is checked by its environment instead)."""
        if host_python and not os.path.exists(SANDBOX_PYTHON):
            raise ConfigError(f"the model gateway's bridge needs {SANDBOX_PYTHON} in the sandbox; install python3")
        self.root = Path(tempfile.mkdtemp(prefix="trialbook-gateway-"))
        for d in (self.keys_dir, self.sock_dir, self.bridge_dir):
            d.mkdir(mode=0o700)
        shutil.copyfile(BRIDGE_SOURCE, self.bridge_dir / "bridge.py")
        for d in (self.sock_dir, self.bridge_dir):  # readable by the sandbox user; nothing to write
            d.chmod(0o755)
        (self.bridge_dir / "bridge.py").chmod(0o644)
        config = self.root / "config.yaml"
        config.write_text(yaml.safe_dump(proxy_config(self.variants), sort_keys=False), encoding="utf-8")
        self.port = _free_port()
        env = {**os.environ, keyfiles.GATEWAY_DIR_ENV: str(self.root), "LITELLM_LOCAL_MODEL_COST_MAP": "True",
               "LITELLM_LOG": os.environ.get("LITELLM_LOG", "ERROR"), "NO_COLOR": "1",
               # no admin UI, no API docs: nothing a trial could use but the model routes
               "DISABLE_ADMIN_UI": "True", "NO_DOCS": "True", "NO_REDOC": "True",
               # The proxy's admin key: required by the proxy, used by nobody, never written down.
               "LITELLM_MASTER_KEY": "sk-" + secrets.token_hex(32)}
        env.pop("DATABASE_URL", None)  # a user's own proxy database is not this gateway's
        log = open(self.root / "proxy.log", "wb")  # noqa: SIM115 - handed to the child
        try:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "litellm.proxy.proxy_cli", "--config", str(config),
                "--host", "127.0.0.1", "--port", str(self.port), "--num_workers", "1",
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True)
        finally:
            log.close()
        try:
            await self._wait_ready()
            sock = self.sock_dir / "gateway.sock"
            self._server = await asyncio.start_unix_server(self._forward, path=str(sock))
            sock.chmod(0o666)  # the sandbox user connects; the directory is read-only in the sandbox
            give_to_sandbox(self.sock_dir)
        except BaseException:
            await self.stop()
            raise
        _log.info("model gateway started on %s for %d variant(s)", self.url, len(self.variants))
        return self

    async def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.returncode is not None:
                break
            if await asyncio.to_thread(self._alive):
                return
            await asyncio.sleep(0.25)
        why = "exited" if self._proc.returncode is not None else f"did not answer in {START_TIMEOUT_S:g}s"
        raise ServiceUnavailableError(f"the model gateway (LiteLLM proxy) {why}; no trial was run. "
                                      f"Its log ends: {self.log_tail()}")

    def _alive(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health/liveliness", timeout=2):  # noqa: S310 - our proxy
                return True
        except (urllib.error.URLError, OSError):
            return False

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy one sandbox connection to the proxy's port and back."""
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            writer.close()
            return

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                with contextlib.suppress(OSError, RuntimeError):
                    dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    @property
    def running(self) -> bool:
        """Whether the proxy process is still up."""
        return self._proc is not None and self._proc.returncode is None

    def log_tail(self, n_chars: int = 600) -> str:
        """The end of the proxy's own log (why it stopped)."""
        try:
            return (self.root / "proxy.log").read_text(encoding="utf-8", errors="replace")[-n_chars:].strip()
        except OSError:
            return ""

    def open_trial(self, trial_id: str, variant: VariantConfig, log_path: Path, *,
                   step_limit: int | None = None, cost_limit: float | None = None) -> TrialGateway:
        """A new key for one trial, valid until :meth:`TrialGateway.close`."""
        key = keyfiles.new_key()
        keyfiles.write_record(self.keys_dir, key, keyfiles.KeyRecord(
            trial_id=trial_id, model_name=model_name(variant), log_path=str(log_path),
            step_limit=step_limit, cost_limit=cost_limit))
        return TrialGateway(self, key, trial_id)

    async def stop(self) -> None:
        """Stop the proxy and the socket, and remove the gateway's directory."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=5)
            self._server = None
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self._proc.wait(), timeout=10)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._proc.pid, signal.SIGKILL)
                await self._proc.wait()
        self._proc = None
        if getattr(self, "root", None) is not None:
            shutil.rmtree(self.root, ignore_errors=True)
