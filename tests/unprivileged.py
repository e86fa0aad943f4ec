"""Running trialbook as an unprivileged user from a test that runs as root.

The sandbox must hold whoever runs trialbook, so attack tests run every job twice: as root,
and as ``nobody`` through ``setpriv``. ``nobody`` cannot enter ``/root`` (where a pyenv
interpreter may live), so the job runs on the system's Python of the same version with this
environment's packages on ``PYTHONPATH`` (same ABI); if that cannot work here the test fails
with the reason instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

UNPRIVILEGED_UID = 65534
REPO = Path(__file__).resolve().parents[1]


def running_as_root() -> bool:
    return os.geteuid() == 0


def _python() -> str:
    """An interpreter ``nobody`` can run: this one when reachable, else the system's of the same version."""
    system = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (sys.executable, system):
        probe = subprocess.run(["setpriv", f"--reuid={UNPRIVILEGED_UID}", f"--regid={UNPRIVILEGED_UID}",
                                "--clear-groups", candidate, "-c", "import orjson, pydantic, trialbook"],
                               capture_output=True, env=unprivileged_env())
        if probe.returncode == 0:
            return candidate
    raise AssertionError(f"no Python that uid {UNPRIVILEGED_UID} can run with trialbook importable "
                         f"(tried {sys.executable} and {system}); the repository and its .venv must be "
                         "readable by other users")


def unprivileged_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    paths = [str(REPO), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8",
            "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths)), "PYTHONDONTWRITEBYTECODE": "1",
            **(extra or {})}


def shared_tmpdir() -> Path:
    """A directory both root and ``nobody`` can use (pytest's own tmp dirs are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="trialbook-unpriv-", dir="/tmp"))
    path.chmod(0o755)
    os.chown(path, UNPRIVILEGED_UID, UNPRIVILEGED_UID)
    return path


def give(path: Path) -> None:
    """Hand a tree to ``nobody`` (a block it runs a job in)."""
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.lchown(os.path.join(root, name), UNPRIVILEGED_UID, UNPRIVILEGED_UID)
    os.lchown(path, UNPRIVILEGED_UID, UNPRIVILEGED_UID)


def trialbook(args: list[str], *, cwd: Path, unprivileged: bool, timeout: float = 300,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``trialbook ARGS`` as root (this interpreter) or as ``nobody``."""
    if not unprivileged:
        return subprocess.run([sys.executable, "-m", "trialbook.cli.main", *args], cwd=cwd, capture_output=True,
                              text=True, timeout=timeout, env={**os.environ, **(env or {})})
    return subprocess.run(["setpriv", f"--reuid={UNPRIVILEGED_UID}", f"--regid={UNPRIVILEGED_UID}",
                           "--clear-groups", _python(), "-m", "trialbook.cli.main", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=unprivileged_env(env))


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
