"""Installing an agent CLI once per block into a cache directory that trials mount read-only.

An install recipe is a shell script (the variant's ``install:``, e.g. ``npm install --prefix
"$TRIALBOOK_AGENT_DIR" @openai/codex@0.47.0``). It runs in a sandbox with the network on
(package registries) and one writable directory, mounted at :data:`AGENT_DIR`; trials get the
same directory at the same place, read-only, so absolute paths the installer wrote (npm's
``.bin`` links, a virtualenv's scripts) hold. The directory is named by the recipe's hash
under ``<block>/.trialbook/agents/``: a changed recipe or version installs anew, an unchanged
one is installed once. A half-made install is never used (it is built beside the cache and
renamed into place when the script succeeded).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from trialbook.errors import ServiceUnavailableError
from trialbook.run.environments.local import Mount, Sandbox, give_to_sandbox

#: Where an installed agent lives inside the sandbox (install and trials alike).
AGENT_DIR = "/run/trialbook-agent"
#: The marker of a finished install (holds the recipe).
DONE_MARKER = ".trialbook-installed.json"
INSTALL_LOG = "install.log"
#: Host variables an installer needs to reach package registries (proxies, CA bundles, mirrors).
NETWORK_ENV = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
               "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
               "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "UV_INDEX_URL", "npm_config_registry")


def recipe_dir(cache_root: Path, agent: str, script: str) -> Path:
    """The cache directory of one install recipe."""
    digest = hashlib.sha256(f"{agent}\0{script}".encode()).hexdigest()[:16]
    return cache_root / f"{agent}-{digest}"


def is_installed(target: Path) -> bool:
    return (target / DONE_MARKER).is_file()


async def install(cache_root: Path, agent: str, variant_name: str, script: str, timeout_s: float,
                  ro_binds: list[str] | None = None) -> Path:
    """The installed directory of ``script`` (installing it now if it is not in the cache yet).

    ``ro_binds`` are the block's ``environment.ro_binds`` (e.g. a directory of local packages
    to install offline)."""
    target = recipe_dir(cache_root, agent, script)
    if is_installed(target):
        return target
    cache_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=cache_root))
    give_to_sandbox(work)
    work.chmod(0o755)
    log = cache_root / f"{target.name}.{INSTALL_LOG}"
    env = {k: os.environ[k] for k in NETWORK_ENV if os.environ.get(k)}
    env.update({"TRIALBOOK_AGENT_DIR": AGENT_DIR, "npm_config_update_notifier": "false",
                "npm_config_fund": "false", "npm_config_audit": "false"})
    sandbox = Sandbox(mounts=[Mount(work, AGENT_DIR)], network=True, workdir=AGENT_DIR, env=env,
                      ro_binds=list(ro_binds or []))
    result = await sandbox.exec(["bash", "-eo", "pipefail", "-c", script], timeout_s=timeout_s, stdout_path=log)
    if result.exit_code != 0:
        await asyncio.to_thread(shutil.rmtree, work, True)
        why = f"timed out after {timeout_s:g}s" if result.timed_out else f"exited with code {result.exit_code}"
        raise ServiceUnavailableError(f"variant {variant_name}: installing agent {agent} {why}; no trial was run "
                                      f"(see {log})")
    (work / DONE_MARKER).write_text(json.dumps({"agent": agent, "install": script}), encoding="utf-8")
    shutil.move(str(log), work / INSTALL_LOG)
    if target.exists():  # a leftover without its marker: never trusted
        await asyncio.to_thread(shutil.rmtree, target, True)
    try:
        work.rename(target)
    except OSError:  # another runner installed the same recipe meanwhile: use theirs
        await asyncio.to_thread(shutil.rmtree, work, True)
        if not is_installed(target):
            raise
    return target
