"""Running trialbook as an unprivileged user from a test that runs as root.

The sandbox must hold whoever runs trialbook, so attack tests run every job twice: as root,
and as ``nobody`` through ``setpriv``. ``nobody`` cannot enter ``/root``, where a pyenv
interpreter may live: the unprivileged run then happens in a private mount namespace whose
``/root`` is an empty, traversable tmpfs with only the interpreter's directory bound back
(the host's ``/root`` is untouched). If that cannot work here the test fails with the reason
instead of skipping.
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


def _hidden_roots() -> list[str]:
    """Directories under ``/root`` that this interpreter, its venv or the repository live in."""
    out = []
    for path in (sys.base_prefix, sys.prefix, str(REPO), os.path.realpath(sys.executable)):
        parts = Path(path).parts
        if len(parts) > 2 and parts[1] == "root":
            out.append(str(Path(*parts[:3])))
    return sorted(set(out))


def _launcher() -> list[str]:
    """The command prefix that runs this interpreter as ``nobody``, exposing what it needs of /root."""
    drop = ["setpriv", f"--reuid={UNPRIVILEGED_UID}", f"--regid={UNPRIVILEGED_UID}", "--clear-groups"]
    hidden = _hidden_roots()
    if not hidden:
        return [*drop, sys.executable]
    script = ["set -e", "hold=$(mktemp -d /tmp/trialbook-hold-XXXXXX)"]
    for n, path in enumerate(hidden):
        script.append(f'mkdir "$hold/{n}" && mount --bind "{path}" "$hold/{n}"')
    script.append("mount -t tmpfs -o mode=0755 trialbook-root /root")
    for n, path in enumerate(hidden):
        script.append(f'mkdir -p "{path}" && mount --move "$hold/{n}" "{path}"')
    script.append('exec "$@"')
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", "\n".join(script), "sh",
            *drop, sys.executable]


def _check_launcher() -> list[str]:
    """:func:`_launcher`, checked once: trialbook imports as ``nobody`` (else the reason, as a failure)."""
    launcher = _launcher()
    probe = subprocess.run([*launcher, "-c", "import orjson, pydantic, trialbook"], capture_output=True,
                           text=True, env=unprivileged_env())
    if probe.returncode != 0:
        raise AssertionError(f"cannot run {sys.executable} as uid {UNPRIVILEGED_UID} here: "
                             f"{probe.stderr.strip()[-500:]}")
    return launcher


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
    return subprocess.run([*_check_launcher(), "-m", "trialbook.cli.main", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=unprivileged_env(env))


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
