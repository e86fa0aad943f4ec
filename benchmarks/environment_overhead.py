"""Per-trial overhead of each environment: N trivial trials (nop agent, trivial verifier), ``local``
(bubblewrap) against ``podman`` (a container per trial), at concurrency C; with ``--docker`` also
``docker`` (the ``docker`` command: the Docker CLI against podman's Docker API where no Docker
daemon runs, see tests/container_engine.py ``docker_engine``).

Prints wall time and per-trial overhead in ms (wall x concurrency / N) for each, plus the
podman image build the first job paid. The task's image is ``FROM`` the test suite's base
image (tests/container_engine.py makes it offline from the host's binaries), with podman's
flags for machines like the test VMs (``--runtime runc``, ulimits; see docs/environments.md).
Usage: python benchmarks/environment_overhead.py [--n 20] [--concurrency 2] [--docker]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from container_engine import ENGINE_FLAGS, RUN_FLAGS, base_image, docker_engine  # noqa: E402

from trialbook.block.init import init_block  # noqa: E402
from trialbook.run.scheduler import prepare_job, run_job  # noqa: E402


def make_block(root: Path, n: int, concurrency: int, environment: dict, base: str, nonce: str) -> Path:
    task = root / "tasks" / "trivial"
    for sub in ("environment", "tests", "solution"):
        (task / sub).mkdir(parents=True)
    (task / "task.toml").write_text('version = "1.0"\n')
    (task / "instruction.md").write_text("Do nothing.\n")
    (task / "environment" / "Dockerfile").write_text(f"FROM {base}\nWORKDIR /app\nLABEL nonce={nonce}\n")
    (task / "tests" / "test.sh").write_text("echo 1 > /logs/verifier/reward.txt\n")
    config = {"kind": "eval", "tasks": {"path": "tasks"}, "variants": [{"name": "nop", "agent": "nop"}],
              "attempts": n, "concurrency": concurrency, "environment": environment}
    init_block(root, "eval", config_text=yaml.safe_dump(config))
    return root / "config.yaml"


def run(n: int, concurrency: int, environment: dict, base: str, nonce: str) -> tuple[float, float]:
    """(wall seconds, mean environment_setup seconds) of one job."""
    tmp = Path(tempfile.mkdtemp(prefix="tb-envbench-"))
    try:
        setup = prepare_job(make_block(tmp / "block", n, concurrency, environment, base, nonce), "bench")
        t0 = time.perf_counter()
        out = run_job(setup)
        wall = time.perf_counter() - t0
        bad = [r for r in out.records if r.outcome != "resolved"]
        assert not bad, bad[0].reason
        return wall, sum(r.timings["environment_setup"].duration_s or 0 for r in out.records) / n
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--docker", action="store_true", help="also environment.type docker")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    print(f"{platform.node()}: {os.cpu_count()} cpus, load {load:.1f}, {time.strftime('%Y-%m-%d %H:%M')}")
    base = base_image()
    nonce = secrets.token_hex(4)
    podman = {"type": "podman", "engine_flags": ENGINE_FLAGS, "run_flags": RUN_FLAGS}
    t0 = time.perf_counter()
    run(1, 1, podman, base, nonce)  # builds the image once; not counted below
    print(f"podman image build + one trial: {time.perf_counter() - t0:.1f} s")
    print(f"{args.n} trivial trials, concurrency {args.concurrency}")
    rows = [("local", {"type": "local"}), ("podman", podman)] + ([("docker", {"type": "docker"})] if args.docker else [])
    for name, env in rows:
        with contextlib.ExitStack() as stack:
            if name == "docker":
                what, variables = stack.enter_context(docker_engine(Path(stack.enter_context(
                    tempfile.TemporaryDirectory(prefix="tb-envbench-docker-")))))
                os.environ.update(variables)
                stack.callback(lambda v=variables: [os.environ.pop(k, None) for k in v])
                name = f"docker ({what})"
            wall, setup = run(args.n, args.concurrency, env, base, nonce)
        print(f"{name:33s} wall {wall:6.1f} s   per-trial overhead {wall * args.concurrency / args.n * 1000:7.0f} ms"
              f"   environment setup {setup * 1000:5.0f} ms")


if __name__ == "__main__":
    main()
