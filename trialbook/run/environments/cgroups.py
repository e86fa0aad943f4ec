"""The cgroups one phase of a trial runs in (v2, or v1 as these machines have), and why one died.

Each phase gets child cgroups of the runner's own (``/proc/self/cgroup``): with cgroup v2 one
directory holding ``memory.max``, ``memory.swap.max``, ``pids.max`` and ``cpu.max``; with v1
one directory per controller (``memory``, ``pids``, ``cpu``). A sandboxed command joins them
through a tiny shell wrapper that writes its own pid to ``cgroup.procs`` and then ``exec``\\ s
bubblewrap, so every process of the sandbox is inside before the command runs. The kernel
then kills within the cgroup only (the OOM killer, the pids controller refusing ``fork``), and
the counters (``memory.events``, ``memory.oom_control``, ``pids.events``) say which limit it
was. The directories are removed when the phase ends, after any process left in them is killed.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

from trialbook.model.limits import Limits, human

_log = logging.getLogger("trialbook.run")
_V1 = ("memory", "pids", "cpu")


def _own_cgroup_lines() -> list[str]:
    try:
        return Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return []


@functools.cache
def own_v1(controller: str) -> Path | None:
    """Our cgroup directory of a v1 controller, if mounted and writable."""
    for line in _own_cgroup_lines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            here = Path("/sys/fs/cgroup") / controller / path.lstrip("/")
            if here.is_dir() and os.access(here, os.W_OK):
                return here
    return None


@functools.cache
def own_v2() -> Path | None:
    """Our cgroup v2 directory, if it delegates the memory controller to children and is writable."""
    for line in _own_cgroup_lines():
        if line.startswith("0::"):
            for root in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")):
                here = root / line[3:].lstrip("/")
                try:
                    if os.access(here, os.W_OK) and "memory" in (here / "cgroup.subtree_control").read_text():
                        return here
                except OSError:
                    continue
    return None


def available_mode() -> str:
    """``v2``, ``v1`` or ``none``: which cgroups this process can make children of."""
    if own_v2() is not None:
        return "v2"
    return "v1" if any(own_v1(c) is not None for c in _V1) else "none"


class PhaseCgroup:
    """The cgroups of one phase; made when the phase starts its first command (a phase that runs
    none, like the nop agent's, costs nothing)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.dirs: dict[str, Path] = {}
        #: Resources whose limit file could not be written (v2 without that controller delegated).
        self.unwritten: set[str] = set()
        self.created = False
        self.mode = available_mode()

    def create(self) -> None:
        """Make the cgroups and write the limits (once); an unusable cgroupfs leaves mode ``none``."""
        if self.created:
            return
        self.created = True
        if self.mode == "none":
            return
        try:
            self._make_all(f"trialbook-{uuid.uuid4().hex[:12]}")
        except OSError as exc:  # e.g. a controller that refuses a value: the guard falls back to rlimits
            _log.warning("cgroups unusable (%s); falling back to rlimits", exc)
            self.remove(wait_s=0)
            self.dirs.clear()
        if not self.dirs:
            self.mode = "none"

    def _make_all(self, name: str) -> None:
        limits = self.limits
        v2 = own_v2()
        if v2 is not None:
            self._make("v2", v2 / name)
            self._write("v2", "memory.max", limits.memory)
            with contextlib.suppress(OSError):  # no swap accounting: no swap file
                self._write("v2", "memory.swap.max", 0 if limits.memory else None)
            for resource, file, value in (("pids", "pids.max", limits.pids),
                                          ("cpus", "cpu.max", f"{int(limits.cpus * 100_000)} 100000"
                                           if limits.cpus else None)):
                try:
                    self._write("v2", file, value)
                except OSError:  # that controller is not delegated to us
                    self.unwritten.add(resource)
            return
        memory, pids, cpu = (own_v1(c) for c in _V1)
        if memory is not None and limits.memory:
            self._make("memory", memory / name)
            self._write("memory", "memory.limit_in_bytes", limits.memory)
            with contextlib.suppress(OSError):  # swap accounting may be off (then there is no memsw file)
                self._write("memory", "memory.memsw.limit_in_bytes", limits.memory)
        if pids is not None and limits.pids:
            self._make("pids", pids / name)
            self._write("pids", "pids.max", limits.pids)
        if cpu is not None and limits.cpus:
            self._make("cpu", cpu / name)
            self._write("cpu", "cpu.cfs_period_us", 100_000)
            self._write("cpu", "cpu.cfs_quota_us", int(limits.cpus * 100_000))

    def _make(self, key: str, path: Path) -> None:
        path.mkdir()
        self.dirs[key] = path

    def _write(self, key: str, name: str, value: Any) -> None:
        if value is not None and key in self.dirs:
            (self.dirs[key] / name).write_text(str(value))

    def enforces(self, resource: str) -> bool:
        """Whether this cgroup limits ``memory``, ``pids`` or ``cpus``."""
        if getattr(self.limits, resource) is None:
            return False
        if "v2" in self.dirs:
            return resource not in self.unwritten
        return {"memory": "memory", "pids": "pids", "cpus": "cpu"}[resource] in self.dirs

    def join(self, argv: list[str], prelude: str = "") -> list[str]:
        """``argv`` started inside these cgroups (unchanged when there are none); ``prelude`` is
        shell run first by the same wrapper (e.g. a ``ulimit``)."""
        self.create()
        if not self.dirs:
            return argv
        joins = " ".join(f'echo $$ > "{d}/cgroup.procs" &&' for d in self.dirs.values())
        return ["/bin/sh", "-c", f'{prelude}{joins} exec "$@"', "sh", *argv]

    def exceeded(self) -> str | None:
        """Which limit killed something in this phase, as the reason a trial gives."""
        if "v2" in self.dirs:
            if _counts(self.dirs["v2"] / "memory.events").get("oom_kill", 0) and self.limits.memory:
                return f"memory limit {human(self.limits.memory)} exceeded"
            if _counts(self.dirs["v2"] / "pids.events").get("max", 0) and self.limits.pids:
                return f"process limit {self.limits.pids} reached"
            return None
        if "memory" in self.dirs and self.limits.memory and (
                _counts(self.dirs["memory"] / "memory.oom_control").get("oom_kill", 0)):
            return f"memory limit {human(self.limits.memory)} exceeded"
        if "pids" in self.dirs and _counts(self.dirs["pids"] / "pids.events").get("max", 0):
            return f"process limit {self.limits.pids} reached"
        return None

    def kill(self) -> None:
        """SIGKILL every process still in these cgroups."""
        for path in self.dirs.values():
            if (path / "cgroup.kill").exists():
                with contextlib.suppress(OSError):
                    (path / "cgroup.kill").write_text("1")
                continue
            for pid in _pids(path / "cgroup.procs"):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)

    def remove(self, wait_s: float = 5.0) -> bool:
        """Kill what is left and remove the cgroups; True when all are gone.

        A sandbox's last processes die a moment after bubblewrap exits (the PID namespace is
        torn down asynchronously), so removal retries for up to ``wait_s`` (blocking: call it
        off the event loop).
        """
        deadline = time.monotonic() + wait_s
        pending, pause = dict(self.dirs), 0.0005
        while True:
            for key, path in list(pending.items()):
                try:
                    path.rmdir()
                except FileNotFoundError:
                    pass
                except OSError:
                    continue
                del pending[key]
            if not pending or time.monotonic() >= deadline:
                break
            self.kill()
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
        if pending:
            _log.warning("cgroups not removed (processes still in them): %s",
                         ", ".join(str(p) for p in pending.values()))
        return not pending


def _pids(path: Path) -> list[int]:
    try:
        return [int(x) for x in path.read_text().split()]
    except (OSError, ValueError):
        return []


def _counts(path: Path) -> dict[str, int]:
    try:
        text = path.read_text()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def process_limit_counts(pid: int) -> dict[str, int]:
    """OOM kills (``oom_kill``) and refused forks (``pids_max``) so far in the cgroup of process
    ``pid`` (a container's), as this host sees it; {} when it cannot be read."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return {}
    found: dict[str, int] = {}
    for line in lines:
        _, controllers, path = line.split(":", 2)
        rel = path.lstrip("/")
        if controllers == "" and Path("/sys/fs/cgroup/cgroup.controllers").exists():  # cgroup v2 only
            base = Path("/sys/fs/cgroup") / rel
            found["oom_kill"] = _counts(base / "memory.events").get("oom_kill", 0)
            found["pids_max"] = _counts(base / "pids.events").get("max", 0)
        elif "memory" in controllers.split(","):
            found["oom_kill"] = _counts(Path("/sys/fs/cgroup/memory") / rel / "memory.oom_control").get("oom_kill", 0)
        elif "pids" in controllers.split(","):
            found["pids_max"] = _counts(Path("/sys/fs/cgroup/pids") / rel / "pids.events").get("max", 0)
    return found
