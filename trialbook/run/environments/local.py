"""The ``local`` environment: commands run in a bubblewrap sandbox with per-trial mounts.

Inside the sandbox the host system (``/usr``, ``/etc``) is read-only, ``/tmp`` is a fresh
tmpfs, and only the trial's own scratch directories are mounted (``/app``, ``/logs/agent``,
and per phase ``/logs/verifier``, ``/tests``, ``/solution``). The network is unshared
unless the config allows it. The sandbox runs in its own session and PID namespace, so a
timeout kills the whole process tree. A task's Dockerfile is *not* built: this
environment uses the host's system, read-only.

The boundary (docs/sandbox.md): sandboxed commands never hold a capability and never run
as a privileged user, so nothing can be remounted writable and no host file is reachable
through ownership.

* trialbook run by a user: bubblewrap makes a user namespace in which the command is uid/gid
  :data:`SANDBOX_UID` with every capability dropped (``--unshare-user --cap-drop ALL``,
  ``--disable-userns``).
* trialbook run as root: a user namespace would map the command to host root, whose files
  are writable by owner. Instead bubblewrap (root) sets the mounts up and hands over to
  ``setpriv``, which becomes the host user :data:`SANDBOX_HOST_UID` (``nobody``), clears the
  bounding set and keeps no capability; ``no_new_privs`` (set by bubblewrap) stops any way
  back. The per-trial writable directories are given to that user
  (:func:`give_to_sandbox`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trialbook.errors import ConfigError
from trialbook.model.limits import Limits
from trialbook.run.environments.base import ExecResult
from trialbook.run.environments.capture import FileCapture
from trialbook.run.environments.guard import PhaseGuard

SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_SYSTEM_DIRS = ("/usr", "/etc", "/opt")
_SYSTEM_LINKS = ("/bin", "/lib", "/lib64", "/sbin", "/lib32", "/libx32")
#: uid and gid of every sandboxed process, inside its user namespace.
SANDBOX_UID = 1000
#: The host user bubblewrap runs as when trialbook runs as root (``nobody``).
SANDBOX_HOST_UID = 65534
SANDBOX_HOST_GID = 65534


def bwrap_available() -> str | None:
    """Path of the ``bwrap`` binary, or None."""
    return shutil.which("bwrap")


@functools.cache
def bwrap_sizes_tmpfs() -> bool:
    """Whether this bubblewrap has ``--size`` (0.5 and later) to size the ``/tmp`` tmpfs."""
    bwrap = bwrap_available()
    if bwrap is None:
        return False
    try:
        out = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return "--size" in out.stdout + out.stderr


def host_identity() -> tuple[int, int] | None:
    """The host (uid, gid) sandboxes run as: ``nobody`` when trialbook is root, else None (ourselves)."""
    return (SANDBOX_HOST_UID, SANDBOX_HOST_GID) if os.geteuid() == 0 else None


def give_to_sandbox(path: Path) -> None:
    """Make a scratch tree writable by the sandbox user (when it differs from us); links are not followed."""
    ident = host_identity()
    if ident is None or not path.exists():
        return
    uid, gid = ident
    os.lchown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            with contextlib.suppress(FileNotFoundError):
                os.lchown(os.path.join(root, name), uid, gid)


@dataclass(frozen=True)
class Mount:
    """A host path bound at ``target`` inside the sandbox."""

    source: Path
    target: str
    writable: bool = True


@dataclass
class Launch:
    """A ready-to-start sandboxed command."""

    argv: list[str]

    def popen_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``subprocess.Popen`` / ``asyncio.create_subprocess_exec``."""
        return {"start_new_session": True}


@dataclass
class Sandbox:
    """Builds and runs bubblewrap command lines for one trial."""

    mounts: list[Mount]
    network: bool = False
    env: dict[str, str] = field(default_factory=dict)
    ro_binds: list[str] = field(default_factory=list)
    workdir: str = "/app"
    #: The phase's limits; ``tmp`` sizes /tmp, ``output`` caps each output file (capture.py).
    limits: Limits = field(default_factory=Limits)
    #: What enforces the others (guard.py: cgroups, rlimits, a watchdog); None: not enforced.
    guard: PhaseGuard | None = None
    #: Where /tmp lives when this bubblewrap cannot size a tmpfs (before 0.5): a per-trial directory.
    tmp_dir: Path | None = None
    #: Notes for the trial record (output cut at its limit), shared by copies of this sandbox.
    notes: list[str] = field(default_factory=list)
    #: A prefix of every command, run inside the sandbox (the model gateway's bridge).
    wrapper: list[str] = field(default_factory=list)

    def launch(self, command: list[str], extra_mounts: list[Mount] | None = None) -> Launch:
        """The bwrap invocation of ``command`` (see the module docstring for who it runs as)."""
        bwrap = bwrap_available()
        if bwrap is None:
            raise ConfigError(
                "bubblewrap (bwrap) is not installed; install it with: apt-get install -y bubblewrap"
            )
        privileged = os.geteuid() == 0
        args = [bwrap, "--die-with-parent", "--new-session"]
        if privileged:
            args += ["--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try",
                     "--cap-drop", "ALL", *(a for cap in _SETPRIV_CAPS for a in ("--cap-add", cap))]
            if not self.network:
                args.append("--unshare-net")
        else:
            args += ["--unshare-all", "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
                     "--cap-drop", "ALL", "--disable-userns"]
            if self.network:
                args.append("--share-net")
        for d in _SYSTEM_DIRS:
            if os.path.isdir(d):
                args += ["--ro-bind", d, d]
        for link in _SYSTEM_LINKS:
            if os.path.islink(link):
                args += ["--symlink", os.readlink(link), link]
            elif os.path.isdir(link):
                args += ["--ro-bind", link, link]
        if self.network and os.path.exists("/etc/resolv.conf"):
            args += ["--ro-bind", "/etc/resolv.conf", "/etc/resolv.conf"]
        args += ["--dev", "/dev", "--proc", "/proc"]
        if self.limits.tmp and self.tmp_dir is not None and not bwrap_sizes_tmpfs():
            args += ["--bind", str(self.tmp_dir), "/tmp"]  # an old bubblewrap: /tmp counts as storage
        else:
            args += ["--size", str(self.limits.tmp)] if self.limits.tmp else []
            args += ["--perms", "01777", "--tmpfs", "/tmp"]
        args += ["--perms", "0755", "--dir", "/logs"]
        made = {"/", "/logs", "/tmp", "/dev", "/proc", *_SYSTEM_DIRS, *_SYSTEM_LINKS}
        for path in self.ro_binds:
            if not os.path.exists(path):
                raise ConfigError(f"environment.ro_binds: {path} does not exist")
            args += [*_parent_dirs(path, made), "--ro-bind", path, path]
        for m in [*self.mounts, *(extra_mounts or [])]:
            args += [*_parent_dirs(m.target, made), "--bind" if m.writable else "--ro-bind", str(m.source), m.target]
        args += ["--chdir", self.workdir, "--clearenv"]
        env = {"PATH": SANDBOX_PATH, "HOME": "/tmp", "LANG": "C.UTF-8", "TERM": "dumb", **self.env}
        for k, v in env.items():
            args += ["--setenv", k, v]
        drop = _drop_privileges() if privileged else []
        inner = self.guard.inner() if self.guard is not None else []
        argv = [*args, "--", *drop, *inner, *self.wrapper, *command]
        return Launch(self.guard.outer(argv) if self.guard is not None else argv)

    def argv(self, command: list[str], extra_mounts: list[Mount] | None = None) -> list[str]:
        """The full ``bwrap`` argv running ``command`` in this sandbox."""
        return self.launch(command, extra_mounts).argv

    def popen(self, command: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """Start ``command`` in the sandbox with ``subprocess.Popen`` (for code that is not async)."""
        spec = self.launch(command)
        proc = subprocess.Popen(spec.argv, **spec.popen_kwargs(), **kwargs)
        if self.guard is not None:
            self.guard.started(proc)
        return proc

    async def exec(
        self,
        command: list[str],
        *,
        timeout_s: float,
        stdout_path: Path,
        stderr_path: Path | None = None,
        extra_mounts: list[Mount] | None = None,
        stdin_data: bytes | None = None,
    ) -> ExecResult:
        """Run ``command``; output goes to files; on timeout or cancel the process tree is killed.

        ``stderr_path=None`` merges stderr into stdout. The output files are opened here, by the
        host, in directories the sandbox cannot see; the command writes into pipes that the host
        copies into them, up to ``limits.output`` each (capture.py).
        """
        stdout_path.parent.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        spec = self.launch(command, extra_mounts)
        captures = [FileCapture(p, self.limits.output, self.notes) for p in (stdout_path, stderr_path) if p]
        try:
            proc = await asyncio.create_subprocess_exec(
                *spec.argv,
                stdin=asyncio.subprocess.PIPE if stdin_data is not None else asyncio.subprocess.DEVNULL,
                stdout=captures[0].write_fd,
                stderr=captures[1].write_fd if stderr_path else asyncio.subprocess.STDOUT,
                **spec.popen_kwargs(),
            )
        finally:
            for capture in captures:
                capture.child_started()
        if self.guard is not None:
            self.guard.started(proc)
        try:
            try:
                if stdin_data is not None:
                    await asyncio.wait_for(proc.communicate(stdin_data), timeout=timeout_s)
                else:
                    await asyncio.wait_for(proc.wait(), timeout=timeout_s)
            except TimeoutError:
                await _kill_tree(proc)
                return ExecResult(None, True, time.monotonic() - start)
            except asyncio.CancelledError:
                await _kill_tree(proc)
                raise
            return ExecResult(proc.returncode, False, time.monotonic() - start)
        finally:
            for capture in captures:
                await capture.finished()


def _parent_dirs(target: str, made: set[str]) -> list[str]:
    """``--dir`` arguments making a mount point's missing parents traversable by the sandbox user
    (bubblewrap would create them ``0700``, owned by root)."""
    out: list[str] = []
    parents = [str(p) for p in reversed(Path(target).parents)]
    for parent in parents:
        if parent in made or any(parent.startswith(d + "/") for d in _SYSTEM_DIRS):
            continue
        made.add(parent)
        out += ["--perms", "0755", "--dir", parent]
    return out


#: Capabilities bubblewrap keeps (as root) only so that ``setpriv`` can drop to the sandbox user.
_SETPRIV_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")


def _drop_privileges() -> list[str]:
    """The ``setpriv`` prefix that makes a root-started sandbox command an unprivileged user."""
    setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
    return [setpriv, f"--reuid={SANDBOX_HOST_UID}", f"--regid={SANDBOX_HOST_GID}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--"]


async def _kill_tree(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the sandbox's process group; the PID namespace takes every descendant with it.

    ``proc.kill()`` only when the group cannot be signalled: after the group kill, ``kill()``
    would poll (``waitpid``) the process that just died and reap it before asyncio's child
    watcher, which then reports "Unknown child process" and exit code 255.
    """
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # the group is gone: the process has exited
    except PermissionError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(asyncio.shield(proc.wait()), timeout=10)
