"""A real local Ray cluster for tests and benchmarks: ``ray start --head`` plus worker nodes,
each its own ``ray start --block`` process group, so a node can be killed (kill -9) on its own.

Every process is started here in a new session and stopped by its process group id (never
``ray stop``, which would stop any other Ray on the machine). Node death is detected in about
two seconds (the GCS health check is tightened for the head), so a killed node is noticed fast.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
#: Tighter than Ray's defaults (3 s x 5): a killed node is declared dead in ~2 s.
_FAST_FAILURE = {"RAY_health_check_period_ms": "500", "RAY_health_check_timeout_ms": "500",
                 "RAY_health_check_failure_threshold": "3", "RAY_USAGE_STATS_ENABLED": "0",
                 # On a loaded 2-core machine a raylet can take more than the default 10 s to register.
                 "RAY_raylet_start_wait_time_s": "120",
                 # Without token authentication, whatever ~/.ray/auth_token a ray.init() of a local
                 # instance left on the machine (Ray then turns token mode on for new clusters).
                 "RAY_AUTH_MODE": "disabled"}


class LocalRayCluster:
    """A head node and worker nodes on this machine (1 CPU each unless told), under one temp dir."""

    def __init__(self, log_dir: Path, cpus_per_node: int = 1) -> None:
        self.log_dir = log_dir
        self.cpus = cpus_per_node
        # Ray's socket paths must stay under the 107-byte limit: a short directory of our own.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="tbray-", dir="/tmp"))
        self.address = ""
        #: A directory worker node 0 does not see (given to start(hide=...) by the caller).
        self.hidden: Path | None = None
        self._saved_auth_mode: str | None = None
        self.head: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []

    def _start(self, args: list[str], log: Path, hide: Path | None = None,
               cpus: int | None = None) -> subprocess.Popen[bytes]:
        env = {**os.environ, **_FAST_FAILURE}
        argv = [RAY, "start", "--block", "--num-cpus", str(self.cpus if cpus is None else cpus),
                "--disable-usage-stats", "--dashboard-agent-listen-port", str(_free_port()), *args]
        if hide is not None:  # a node of its own mount namespace, where `hide` is an empty tmpfs
            argv = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                    'mount -t tmpfs tmpfs "$0" && exec "$@"', str(hide), *argv]
        with open(log, "wb") as fh:
            return subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                    cwd=self.temp_dir)

    def start(self, workers: int = 1, hide: Path | None = None) -> LocalRayCluster:
        """Start the head and, while it starts, the first worker (it waits for the head's GCS port); with
        ``hide``, that worker runs in a mount namespace of its own where the directory ``hide`` is empty."""
        # Drivers of this process and its children (trialbook run) connect in the same mode.
        self._saved_auth_mode = os.environ.get("RAY_AUTH_MODE")
        os.environ["RAY_AUTH_MODE"] = "disabled"
        self.address = f"{_node_ip()}:{_free_port()}"
        self.head = self._start(["--head", "--port", self.address.rsplit(":", 1)[1], "--include-dashboard=false",
                                 "--temp-dir", str(self.temp_dir)], self.log_dir / "ray-head.log")
        for i in range(workers):  # one at a time: two nodes starting together race on their socket names
            self.add_worker(hide=hide if i == 0 else None)
            self.wait_for_worker(i)
        self._wait_started(self.head, self.log_dir / "ray-head.log")
        return self

    def _wait_started(self, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while "Ray runtime started" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray start failed ({log.name}): {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)

    def wait_for_worker(self, i: int) -> None:
        """Until worker node ``i``'s ``ray start`` says it joined (its raylet registered with the head)."""
        self._wait_started(self.workers[i], self.log_dir / f"ray-worker-{i}.log")

    def add_worker(self, hide: Path | None = None, cpus: int | None = None) -> int:
        """Start one more worker node (``hide``: a directory that node does not see); returns its index."""
        n = len(self.workers)
        self.workers.append(self._start(["--address", self.address], self.log_dir / f"ray-worker-{n}.log", hide,
                                        cpus))
        return n

    def kill_worker(self, i: int = 0) -> None:
        """kill -9 a worker node: its raylet, its object store and the workers running trials."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.workers[i].pid, signal.SIGKILL)
        self.workers[i].wait(timeout=30)

    def stop(self) -> None:
        """kill -9 every node's process group (nothing of a test cluster needs saving), then reap."""
        for p in (*self.workers, self.head):
            if p is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(timeout=10)
        subprocess.run(["rm", "-rf", str(self.temp_dir)], check=False)
        if not self.address:
            return
        if self._saved_auth_mode is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = self._saved_auth_mode


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def _node_ip() -> str:
    """The address Ray picks for this machine's nodes (the one a route to the outside leaves from)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            return str(s.getsockname()[0])
        except OSError:
            return "127.0.0.1"
