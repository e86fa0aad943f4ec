"""The ray execution backend against the local one on the same job: trials/s, and identical results.

Runs one job (the bundled example tasks x oracle/nop x attempts, ``--n`` trials in all) twice:
with ``execution.backend: local`` at concurrency = the cluster's CPUs, and on a local Ray
cluster of ``--nodes`` nodes (``ray start --head`` + workers, ``--cpus`` each, started here and
killed at the end). Prints trials/s of each, whether results.json / summary.json / summary.md
are identical apart from timestamps and durations, and with ``--kill-worker`` kills a worker
node (kill -9 of its process group) once a third of the trials are done and reports the
trials that were lost and run again. ``--sleep S`` adds S seconds to every trial's agent phase
(closer to real trials, where the runner's overhead matters less).

This is the acceptance run of the ray backend: ``--n 200 --nodes 2 --kill-worker``.
Usage: python benchmarks/ray_backend.py [--n 200] [--nodes 2] [--cpus 1] [--kill-worker] [--sleep 0]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from job_compare import job_differences  # noqa: E402
from ray_cluster import LocalRayCluster  # noqa: E402

from trialbook.app.pipeline import run_block  # noqa: E402
from trialbook.block.init import init_block  # noqa: E402
from trialbook.jsonio import read_json  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "trialbook" / "examples" / "tasks"


def make_block(root: Path, n: int, concurrency: int, sleep: float, execution: dict | None) -> Path:
    """The 5 example tasks x (oracle, nop) x n/10 attempts."""
    tasks = root / "tasks"
    for task in sorted(EXAMPLES.iterdir()):
        if task.is_dir():
            shutil.copytree(task, tasks / task.name)
            if sleep:
                solve = tasks / task.name / "solution" / "solve.sh"
                solve.write_text(solve.read_text().replace("\n", f"\nsleep {sleep}\n", 1))
    variants = [{"name": "oracle", "agent": "oracle"},
                {"name": "nop", "agent": "command", "command": f"sleep {sleep}" if sleep else "true"}]
    config = {"kind": "eval", "tasks": {"path": "tasks"}, "variants": variants, "attempts": max(1, n // 10),
              "concurrency": concurrency, "analysis": {"enabled": False}}
    if execution:
        config["execution"] = execution
    init_block(root, "eval", config_text=yaml.safe_dump(config, sort_keys=False))
    return root / "config.yaml"


def _seconds(a: str, b: str) -> float:
    def parse(x: str) -> datetime:
        return datetime.fromisoformat(x.replace("Z", "+00:00"))

    return (parse(b) - parse(a)).total_seconds()


def run(config: Path) -> tuple[Path, float]:
    out = run_block(config, "bench").outcome
    return out.job_dir, _seconds(out.started_at, out.finished_at)


def killer(cluster: LocalRayCluster, job: Path, after: int, done: list[str]) -> None:
    """Kill worker node 0 once ``after`` trials have finished."""
    while True:
        n = 0
        for p in job.glob("*/trial.json"):
            try:
                n += json.loads(p.read_text()).get("status") == "finished"
            except (OSError, ValueError):
                continue
        if n >= after:
            cluster.kill_worker(0)
            done.append(f"killed worker node 0 after {n} finished trials")
            return
        time.sleep(0.1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200, help="trials (a multiple of 10)")
    ap.add_argument("--nodes", type=int, default=2, help="Ray nodes (head + workers)")
    ap.add_argument("--cpus", type=int, default=1, help="CPUs of each Ray node")
    ap.add_argument("--kill-worker", action="store_true", help="kill a worker node a third of the way in")
    ap.add_argument("--sleep", type=float, default=0.0, help="seconds added to every trial's agent phase")
    args = ap.parse_args()
    cpus = args.nodes * args.cpus
    root = Path(tempfile.mkdtemp(prefix="tb-ray-bench-"))
    cluster = LocalRayCluster(root, cpus_per_node=args.cpus)
    try:
        local_job, local_s = run(make_block(root / "local" / "bench", args.n, cpus, args.sleep, None))
        t0 = time.monotonic()
        cluster.start(workers=args.nodes - 1)
        print(f"ray cluster of {args.nodes} nodes x {args.cpus} CPU started in {time.monotonic() - t0:.1f}s")
        config = make_block(root / "ray" / "bench", args.n, cpus, args.sleep,
                            {"backend": "ray", "address": cluster.address})
        events: list[str] = []
        if args.kill_worker:
            job = root / "ray" / "bench" / "artifacts" / "jobs" / "bench"
            threading.Thread(target=killer, args=(cluster, job, args.n // 3, events), daemon=True).start()
        ray_job, ray_s = run(config)
        trials = [read_json(p) for p in sorted(ray_job.glob("*/trial.json"))]
        n = len(trials)
        print(f"local backend: {n} trials in {local_s:.1f}s = {n / local_s:.2f} trials/s (concurrency {cpus})")
        print(f"ray backend:   {n} trials in {ray_s:.1f}s = {n / ray_s:.2f} trials/s "
              f"({args.nodes} nodes x {args.cpus} CPU, concurrency {cpus})")
        for e in events:
            print(e)
        lost = [t for t in trials if t["retries"]]
        print(f"trials lost with their node and run again: {len(lost)}")
        for t in lost:
            print(f"  {t['trial_name']}: retries {t['retries']}, {t['extra']['execution']['lost'][0][:60]}...")
        nodes = {t["extra"]["execution"].get("node") for t in trials}
        print(f"nodes that ran trials: {len(nodes)}")
        diffs = job_differences(local_job, ray_job)
        outcomes = read_json(ray_job / "results.json")["outcomes"]
        print(f"outcomes: {outcomes}")
        print("results.json, summary.json, summary.md identical to the local backend's "
              "(timestamps/durations aside): " + ("yes" if not diffs else f"NO: {diffs}"))
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
