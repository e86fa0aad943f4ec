"""Enforce one trial phase's limits on every command it runs: cgroups, rlimits and a watchdog.

* Memory, processes, CPU: the phase's cgroups (:mod:`.cgroups`). Where none can be written
  (trialbook run by a user on a machine that delegates no cgroup, a read-only cgroupfs), the
  fallback is rlimits set inside the sandbox by ``prlimit`` plus a watchdog that walks the
  sandbox's process tree five times a second. Memory: ``RLIMIT_DATA`` (each process's private
  memory; an allocation over it fails inside the sandbox) and the watchdog's sum of the
  tree's private resident memory. Processes: ``RLIMIT_NPROC`` when the sandbox has its own
  user namespace (trialbook run by a user: the kernel counts processes per user namespace,
  so it is the trial's own count) and the watchdog's count; as root only the watchdog's
  (``RLIMIT_NPROC`` would count every ``nobody`` process of the machine). CPU has no
  fallback. The job warns once and ``trial.json`` says so (``extra.limits.warning``).
* Disk (``storage``): ``RLIMIT_FSIZE`` (no single file larger than the limit, enforced by the
  kernel) and a watchdog that measures the trial's writable directories every few seconds
  and kills the phase when they hold more than the limit (or more than
  :data:`MAX_WATCHED_ENTRIES` files). Between two checks a fast writer can go past the limit.

A phase over a limit is killed whole; :meth:`PhaseGuard.exceeded` gives the reason.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trialbook.model.limits import Limits, human
from trialbook.run.environments.cgroups import PhaseCgroup, available_mode

_log = logging.getLogger("trialbook.run")
#: A trial's directories with more entries than this are over their storage limit.
MAX_WATCHED_ENTRIES = 500_000
_TREE_POLL_S = 0.2
_DISK_POLL_MIN_S = 2.0
_PAGE = os.sysconf("SC_PAGE_SIZE")


class PhaseGuard:
    """The limits of one phase and what enforces them (see the module docstring).

    ``watch`` is the trial's directory tree the sandbox writes to disk (its storage). Commands
    are started through :meth:`outer` and :meth:`inner`, registered with :meth:`started`, and
    :meth:`close` ends the phase: watchdog stopped, leftover processes killed, cgroups removed.
    """

    def __init__(self, limits: Limits, *, watch: Path | None = None, in_user_namespace: bool = False) -> None:
        self.limits = limits
        self.watch = watch
        self.in_user_namespace = in_user_namespace
        self.cgroup = PhaseCgroup(limits) if any(getattr(limits, r) is not None
                                                 for r in ("memory", "pids", "cpus")) else None
        self.reason: str | None = None
        #: Called (from the watchdog's thread) when the phase is stopped over a limit.
        self.on_trip: Callable[[], None] | None = None
        self._procs: list[Any] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def mode(self) -> str:
        """What limits memory, processes and CPU: ``cgroup v2``, ``cgroup v1``, ``rlimit`` (no cgroup
        could be written) or ``none`` (none of them is set). Storage is always the watchdog's."""
        if self.cgroup is None:
            return "none"
        return f"cgroup {self.cgroup.mode}" if self.cgroup.mode != "none" else "rlimit"

    def fallback(self) -> set[str]:
        """The resources set for this phase that no cgroup limits (all of them without cgroups)."""
        if self.cgroup is None or (self.cgroup.mode != "none" and not self.cgroup.created):
            return set()  # not started yet: cgroups are assumed to work
        return {r for r in ("memory", "pids", "cpus")
                if getattr(self.limits, r) is not None and not self.cgroup.enforces(r)}

    def unenforced(self) -> list[str]:
        """The fallback's gaps: processes only watched (as root: ``RLIMIT_NPROC`` is per user) and CPU."""
        fallback = self.fallback()
        gaps = ["pids (watched only)"] if "pids" in fallback and not self.in_user_namespace else []
        return gaps + (["cpus"] if "cpus" in fallback else [])

    def warning(self) -> str | None:
        """Why this phase's limits are not all cgroup-enforced, or None."""
        fallback = self.fallback()
        if not fallback:
            return None
        whole = self.cgroup is not None and self.cgroup.mode == "none"
        return fallback_warning(self.unenforced(), None if whole else sorted(fallback))

    def record(self) -> dict[str, Any]:
        """What ``trial.json`` says of this phase's limits (``extra.limits``)."""
        out: dict[str, Any] = {**self.limits.set_values(), "enforced_by": self.mode}
        warning = self.warning()
        if warning:
            out["warning"] = warning
        return out

    # -- starting commands -------------------------------------------------------------------
    def _in_cgroups(self) -> bool:
        if self.cgroup is None:
            return False
        self.cgroup.create()
        return self.cgroup.mode != "none"

    def outer(self, argv: list[str]) -> list[str]:
        """``argv`` (bubblewrap) started inside the phase's cgroups, if there are any, by a shell
        that also sets ``RLIMIT_FSIZE`` (POSIX ``ulimit -f`` counts 512-byte blocks)."""
        if not self._in_cgroups():
            return argv
        assert self.cgroup is not None
        storage = self.limits.storage
        return self.cgroup.join(argv, f"ulimit -f {-(-storage // 512)} && " if storage is not None else "")

    def inner(self) -> list[str]:
        """The ``prlimit`` prefix of the command inside the sandbox for what no cgroup limits
        (``RLIMIT_NPROC`` must be set inside the sandbox's user namespace to count only its processes)."""
        in_cgroups = self._in_cgroups()
        fallback = self.fallback()
        opts = []
        if self.limits.storage is not None and not in_cgroups:
            opts.append(f"--fsize={self.limits.storage}")
        if "memory" in fallback:
            opts.append(f"--data={self.limits.memory}")
        if "pids" in fallback and self.in_user_namespace:
            opts.append(f"--nproc={self.limits.pids}")
        prlimit = shutil.which("prlimit")
        return [prlimit, *opts, "--"] if opts and prlimit else []

    def started(self, proc: Any) -> None:
        """Register a started sandbox (an ``asyncio`` or ``subprocess`` process leading its own group)."""
        with self._lock:
            self._procs = [p for p in self._procs if p.returncode is None]
            self._procs.append(proc)
            if self._thread is None and self._needs_watchdog():
                self._thread = threading.Thread(target=self._watch, name="trialbook-limits", daemon=True)
                self._thread.start()
        if self._stop.is_set() or self.reason:  # the phase is over or over its limit: no new command
            self._kill_all()

    def _needs_watchdog(self) -> bool:
        return (self.limits.storage is not None and self.watch is not None) or bool(self._watched())

    def _watched(self) -> set[str]:
        """What the watchdog checks in the process tree for want of a cgroup (memory, processes)."""
        return self.fallback() & {"memory", "pids"}

    # -- the watchdog ------------------------------------------------------------------------
    def _watch(self) -> None:
        watched = self._watched()
        tree = bool(watched)
        memory = self.limits.memory if "memory" in watched else None
        pids = self.limits.pids if "pids" in watched else None
        next_disk = time.monotonic() + _DISK_POLL_MIN_S
        while not self._stop.wait(_TREE_POLL_S if tree else _DISK_POLL_MIN_S):
            if tree:
                used = [tree_usage(p.pid) for p in self._alive()]
                if memory is not None and sum(u[0] for u in used) > memory:
                    self.trip(f"memory limit {human(memory)} exceeded")
                elif pids is not None and sum(u[1] for u in used) >= pids:
                    self.trip(f"process limit {pids} reached")
            now = time.monotonic()
            if self.limits.storage is not None and self.watch is not None and now >= next_disk:
                used, entries = disk_usage(self.watch)
                took = time.monotonic() - now
                next_disk = time.monotonic() + max(_DISK_POLL_MIN_S, 20 * took)  # at most ~5% of a core
                if entries > MAX_WATCHED_ENTRIES:
                    self.trip(f"storage limit exceeded: more than {MAX_WATCHED_ENTRIES:,} files")
                elif used > self.limits.storage:
                    self.trip(f"storage limit {human(self.limits.storage)} exceeded ({human(used)} on disk)")

    def trip(self, reason: str) -> None:
        """Stop the phase for ``reason`` (the first reason is kept)."""
        with self._lock:
            first = self.reason is None
            if first:
                self.reason = reason
        self._kill_all()
        if first and self.on_trip is not None:
            self.on_trip()

    def _alive(self) -> list[Any]:
        with self._lock:
            return [p for p in self._procs if p.returncode is None]

    def _kill_all(self) -> None:
        for proc in self._alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        if self.cgroup is not None:
            self.cgroup.kill()

    # -- the end -------------------------------------------------------------------------------
    def exceeded(self) -> str | None:
        """Which limit stopped something in this phase, as the reason a trial gives."""
        if self.reason:
            return self.reason
        return self.cgroup.exceeded() if self.cgroup is not None else None

    @property
    def idle(self) -> bool:
        """True when the phase started nothing (no cgroup made, no watchdog): closing it costs nothing."""
        return self._thread is None and (self.cgroup is None or not self.cgroup.dirs)

    def close(self) -> None:
        """End the phase (blocking unless :attr:`idle`: call it off the event loop): watchdog
        stopped, leftover processes killed, cgroups removed."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.cgroup is not None:
            with self._lock:  # the counters go with the cgroups: read them first
                self.reason = self.reason or self.cgroup.exceeded()
            self.cgroup.remove()


_warned: set[str] = set()


def warn_once(job: str, guard: PhaseGuard) -> None:
    """Log the fallback warning once per job (each trial records it too)."""
    warning = guard.warning()
    if warning and job not in _warned:
        _warned.add(job)
        _log.warning("job %s: %s", job, warning)


def job_warning(defaults: Limits) -> str | None:
    """The warning to show when a job starts whose limits cannot use cgroups on this machine."""
    if all(getattr(defaults, r) is None for r in ("memory", "pids", "cpus")) or available_mode() != "none":
        return None
    probe = PhaseGuard(defaults, in_user_namespace=os.geteuid() != 0)
    return probe.warning()


def fallback_warning(unenforced: list[str], partial: list[str] | None = None) -> str:
    """The one-line warning of a job whose limits cannot (all) use cgroups; ``partial`` names the
    resources the cgroups here cannot limit (None: no cgroup is writable at all)."""
    lead = "cgroups are not writable here" if partial is None else \
        f"the cgroups here cannot limit {', '.join(partial)}"
    gaps = f"; not enforced: {', '.join(unenforced)}" if unenforced else ""
    return (f"{lead}: limits fall back to rlimits (RLIMIT_DATA, RLIMIT_NPROC) and a watchdog on each "
            f"sandbox's memory and processes{gaps} (docs/sandbox.md)")


def tree_usage(pid: int) -> tuple[int, int]:
    """(private resident bytes, threads) of ``pid`` and its descendants, from ``/proc``."""
    total, threads, todo, seen = 0, 0, [pid], set()
    while todo and len(seen) < 100_000:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            fields = Path(f"/proc/{p}/statm").read_text().split()
            tasks = os.listdir(f"/proc/{p}/task")
            total += max(0, int(fields[1]) - int(fields[2])) * _PAGE  # resident - shared (file, shmem)
            threads += len(tasks)
            for task in tasks:
                todo += [int(c) for c in Path(f"/proc/{p}/task/{task}/children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue
    return total, threads


def disk_usage(root: Path) -> tuple[int, int]:
    """(bytes on disk, entries) of a tree the sandbox writes; links are not followed, hard links
    counted once, and a directory the sandbox made unreadable is opened up for the count."""
    total, entries, inodes = 0, 0, set()
    todo = [str(root)]
    while todo and entries <= MAX_WATCHED_ENTRIES:
        path = todo.pop()
        try:
            it = os.scandir(path)
        except PermissionError:
            if not _open_up(path):
                continue
            try:
                it = os.scandir(path)
            except OSError:
                continue
        except OSError:
            continue
        with it:
            for entry in it:
                entries += 1
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
                    if (st.st_dev, st.st_ino) in inodes:
                        continue
                    inodes.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
                if stat.S_ISDIR(st.st_mode):
                    todo.append(entry.path)
    return total, entries


def _open_up(path: str) -> bool:
    """Give ourselves read access to a directory we own that the sandbox made unreadable (never
    through a link: the directory is opened ``O_PATH | O_NOFOLLOW`` and checked first)."""
    try:
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            return False
        os.chmod(f"/proc/self/fd/{fd}", stat.S_IMODE(st.st_mode) | stat.S_IRWXU)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


