"""Resource limits of a trial: memory, processes, CPU and ``/tmp``, enforced by cgroups.

The limit of each resource is the task's request (Harbor's ``task.toml [environment]``:
``memory``/``memory_mb``, ``cpus``, ``pids``) capped by the block's ``environment.limits``,
else the block's default. Each phase of a trial runs in its own cgroup (v1 or v2, whichever
this machine lets us write), so a runaway test is killed alone and the trial says why
("memory limit 512 MiB exceeded") while the rest of the job goes on. Where cgroups cannot be
written (an unprivileged user, a read-only cgroupfs), memory falls back to ``RLIMIT_AS``
through ``prlimit``, with one warning per job; processes and CPU are then not limited.
``/tmp`` is a tmpfs of the limited size in every case.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trialbook.errors import ConfigError

_log = logging.getLogger("trialbook.run")
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "ki": 1024, "kib": 1024, "m": 1000**2, "mb": 1000**2,
          "mi": 1024**2, "mib": 1024**2, "g": 1000**3, "gb": 1000**3, "gi": 1024**3, "gib": 1024**3,
          "t": 1000**4, "tb": 1000**4, "ti": 1024**4, "tib": 1024**4}
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", re.ASCII)


def parse_size(value: Any, where: str) -> int:
    """Bytes from ``4GiB``, ``512M``, ``2048MB`` or a plain number of bytes; a bad value names ``where``."""
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a size such as 4GiB, got {value!r}")
    if isinstance(value, int | float):
        if value <= 0:
            raise ConfigError(f"{where}: a size must be positive, got {value!r}")
        return int(value)
    match = _SIZE.fullmatch(str(value))
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _UNITS:
        raise ConfigError(f"{where}: expected a size such as 4GiB or 512MiB, got {value!r}")
    size = int(float(match.group(1)) * _UNITS[unit])
    if size <= 0:
        raise ConfigError(f"{where}: a size must be positive, got {value!r}")
    return size


def human(size: int) -> str:
    """``4 GiB``, ``512 MiB`` (how limits are named in reasons)."""
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} bytes"


@dataclass(frozen=True)
class Limits:
    """The limits of one trial (None: not limited)."""

    memory: int | None = None
    pids: int | None = None
    cpus: float | None = None
    tmp: int | None = None


def task_requests(environment: dict[str, Any], where: str) -> Limits:
    """What a ``task.toml [environment]`` section asks for (Harbor's field names)."""
    memory = None
    if environment.get("memory") is not None:
        memory = parse_size(environment["memory"], f"{where} [environment] memory")
    elif environment.get("memory_mb") is not None:
        memory = parse_size(f"{environment['memory_mb']}MiB", f"{where} [environment] memory_mb")
    cpus = environment.get("cpus")
    if cpus is not None and (isinstance(cpus, bool) or not isinstance(cpus, int | float) or cpus <= 0):
        raise ConfigError(f"{where} [environment] cpus must be a positive number, got {cpus!r}")
    pids = environment.get("pids")
    if pids is not None and (isinstance(pids, bool) or not isinstance(pids, int) or pids <= 0):
        raise ConfigError(f"{where} [environment] pids must be a positive integer, got {pids!r}")
    return Limits(memory=memory, pids=pids, cpus=float(cpus) if cpus is not None else None)


def effective(request: Limits, defaults: Limits, caps: Limits) -> Limits:
    """The task's request or the default, never above the block's cap."""
    def pick(asked: Any, default: Any, cap: Any) -> Any:
        value = asked if asked is not None else default
        if value is None:
            return cap
        return min(value, cap) if cap is not None else value

    return Limits(memory=pick(request.memory, defaults.memory, caps.memory),
                  pids=pick(request.pids, defaults.pids, caps.pids),
                  cpus=pick(request.cpus, defaults.cpus, caps.cpus),
                  tmp=pick(request.tmp, defaults.tmp, caps.tmp))


@functools.cache
def _own_v1(controller: str) -> Path | None:
    """Our cgroup directory of a v1 controller, if mounted and writable."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            base = Path("/sys/fs/cgroup") / controller
            here = base / path.lstrip("/")
            if here.is_dir() and os.access(here, os.W_OK):
                return here
    return None


@functools.cache
def _own_v2() -> Path | None:
    """Our cgroup v2 directory, if it delegates the memory controller and is writable."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            for root in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")):
                here = root / line[3:].lstrip("/")
                controllers = here / "cgroup.subtree_control"
                try:
                    if os.access(here, os.W_OK) and "memory" in controllers.read_text():
                        return here
                except OSError:
                    continue
    return None


class PhaseCgroup:
    """The cgroups one phase of one trial runs in; its processes join them before they start.

    They are made when the phase starts its first command (a phase that runs none, like the
    nop agent's, costs nothing).
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.dirs: dict[str, Path] = {}
        self.created = False
        self.mode = "v2" if _own_v2() is not None else ("v1" if any(
            _own_v1(c) is not None for c in ("memory", "pids", "cpu")) else "none")

    def _create(self) -> None:
        """Make the cgroups and write the limits (once)."""
        if self.created:
            return
        self.created = True
        try:
            self._make_all(f"trialbook-{uuid.uuid4().hex[:12]}")
        except OSError as exc:  # e.g. a controller that refuses a value: fall back to rlimits
            _log.warning("cgroups unusable (%s); limiting memory with RLIMIT_AS", exc)
            self.remove()
            self.dirs.clear()
            self.mode = "none"

    def _make_all(self, name: str) -> None:
        limits = self.limits
        v2 = _own_v2()
        if v2 is not None:
            self._make("v2", v2 / name)
            self.mode = "v2"
            self._write("v2", "memory.max", limits.memory)
            self._write("v2", "memory.swap.max", 0 if limits.memory else None)
            self._write("v2", "pids.max", limits.pids)
            if limits.cpus:
                self._write("v2", "cpu.max", f"{int(limits.cpus * 100_000)} 100000")
            return
        memory, pids, cpu = _own_v1("memory"), _own_v1("pids"), _own_v1("cpu")
        if memory is not None and limits.memory:
            self._make("memory", memory / name)
            self._write("memory", "memory.limit_in_bytes", limits.memory)
            with contextlib.suppress(OSError):  # swap accounting may be off
                self._write("memory", "memory.memsw.limit_in_bytes", limits.memory)
        if pids is not None and limits.pids:
            self._make("pids", pids / name)
            self._write("pids", "pids.max", limits.pids)
        if cpu is not None and limits.cpus:
            self._make("cpu", cpu / name)
            self._write("cpu", "cpu.cfs_period_us", 100_000)
            self._write("cpu", "cpu.cfs_quota_us", int(limits.cpus * 100_000))
        if not self.dirs:
            self.mode = "none"

    def _make(self, key: str, path: Path) -> None:
        path.mkdir()
        self.dirs[key] = path

    def _write(self, key: str, name: str, value: Any) -> None:
        if value is not None and key in self.dirs:
            (self.dirs[key] / name).write_text(str(value))

    @property
    def limits_memory(self) -> bool:
        return "memory" in self.dirs or (self.mode == "v2" and self.limits.memory is not None)

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` started inside this phase's cgroups (or under ``prlimit`` when there are none)."""
        self._create()
        if self.dirs:
            joins = " ".join(f'echo $$ > "{d}/cgroup.procs" &&' for d in self.dirs.values())
            return ["/bin/sh", "-c", f'{joins} exec "$@"', "sh", *argv]
        prlimit = shutil.which("prlimit")
        if self.limits.memory and prlimit:
            return [prlimit, f"--as={self.limits.memory}", "--", *argv]
        return argv

    def exceeded(self) -> str | None:
        """Which limit killed something in this phase, as the reason a trial gives."""
        if not self.dirs:
            return None
        if self.mode == "v2":
            events = _counts(self.dirs["v2"] / "memory.events")
            if events.get("oom_kill", 0) and self.limits.memory:
                return f"memory limit {human(self.limits.memory)} exceeded"
            if _counts(self.dirs["v2"] / "pids.events").get("max", 0) and self.limits.pids:
                return f"process limit {self.limits.pids} reached"
            return None
        if "memory" in self.dirs and _counts(self.dirs["memory"] / "memory.oom_control").get("oom_kill", 0):
            return f"memory limit {human(self.limits.memory or 0)} exceeded"
        if "pids" in self.dirs and _counts(self.dirs["pids"] / "pids.events").get("max", 0):
            return f"process limit {self.limits.pids} reached"
        return None

    def remove(self) -> None:
        """Remove the cgroups (their processes are gone: the sandbox killed its tree)."""
        for path in self.dirs.values():
            with contextlib.suppress(OSError):
                path.rmdir()


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


_warned: set[str] = set()


def warn_once(job: str, mode: str) -> None:
    """One warning per job when limits cannot use cgroups here."""
    if mode == "none" and job not in _warned:
        _warned.add(job)
        _log.warning("job %s: cgroups are not writable here: memory is limited with RLIMIT_AS (prlimit); "
                     "process and CPU limits are not enforced", job)
