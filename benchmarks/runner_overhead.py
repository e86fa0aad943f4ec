"""Runner overhead: N trivial trials (nop agent, trivial verifier) at concurrency C.

Prints trials/s and the per-trial overhead in ms (wall time x concurrency / N), i.e. what
the runner, the sandbox start-ups and the file writes cost when the agent and verifier do
nothing. ``--no-limits`` turns every resource limit off (``environment.limits`` all null), to
measure what the limits cost (cgroups, the prlimit wrapper, the output pipes).
Usage: python benchmarks/runner_overhead.py [--n 200] [--concurrency 4] [--no-limits]
[--compare-limits ROUNDS]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from trialbook.block.init import init_block
from trialbook.run.scheduler import prepare_job, run_job


def make_block(root: Path, n: int, concurrency: int, limits: bool = True) -> Path:
    """A block with one trivial task run ``n`` times by the nop agent."""
    task = root / "tasks" / "trivial"
    for sub in ("environment", "tests", "solution"):
        (task / sub).mkdir(parents=True)
    (task / "task.toml").write_text('version = "1.0"\n')
    (task / "instruction.md").write_text("Do nothing.\n")
    (task / "tests" / "test.sh").write_text("echo 1 > /logs/verifier/reward.txt\n")
    config = {"kind": "eval", "tasks": {"path": "tasks"}, "variants": [{"name": "nop", "agent": "nop"}],
              "attempts": n, "concurrency": concurrency}
    if not limits:
        names = ("memory", "pids", "cpus", "tmp", "storage", "output", "reward_file")
        config["environment"] = {"limits": dict.fromkeys(names)}
    init_block(root, "eval", config_text=yaml.safe_dump(config))
    return root / "config.yaml"


def run_once(n: int, concurrency: int, limits: bool) -> tuple[float, float]:
    """(wall seconds, mean verifier phase seconds) of one job of ``n`` trivial trials."""
    tmp = Path(tempfile.mkdtemp(prefix="tb-bench-"))
    try:
        setup = prepare_job(make_block(tmp / "block", n, concurrency, limits=limits), "bench")
        t0 = time.perf_counter()
        out = run_job(setup)
        wall = time.perf_counter() - t0
        assert len(out.records) == n and all(r.outcome == "resolved" for r in out.records)
        return wall, sum(r.timings["verifier"].duration_s or 0 for r in out.records) / n
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def compare_limits(n: int, concurrency: int, rounds: int) -> None:
    """Jobs with limits off and on, alternated (the machine's load drifts), compared by medians."""
    per_trial: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(rounds):
        for limits in (False, True):
            wall, _ = run_once(n, concurrency, limits)
            per_trial[limits].append(wall * concurrency / n * 1000)
    off, on = statistics.median(per_trial[False]), statistics.median(per_trial[True])
    diffs = [b - a for a, b in zip(per_trial[False], per_trial[True], strict=True)]
    print(f"{rounds} rounds of {n} trials, concurrency {concurrency}")
    print(f"per-trial overhead, median: limits off {off:.1f} ms, limits on {on:.1f} ms; "
          f"paired difference median {statistics.median(diffs):+.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--no-limits", action="store_true", help="Run with every resource limit off")
    ap.add_argument("--compare-limits", type=int, metavar="ROUNDS", default=0,
                    help="Alternate ROUNDS jobs with limits off and on and compare their medians")
    args = ap.parse_args()
    if args.compare_limits:
        compare_limits(args.n, args.concurrency, args.compare_limits)
        return
    wall, verifier = run_once(args.n, args.concurrency, not args.no_limits)
    print(f"trials: {args.n}  concurrency: {args.concurrency}  limits: {'off' if args.no_limits else 'on'}  "
          f"wall: {wall:.2f} s")
    print(f"throughput: {args.n / wall:.1f} trials/s")
    print(f"per-trial overhead: {wall * args.concurrency / args.n * 1000:.1f} ms "
          f"(of which the sandboxed verifier process: {verifier * 1000:.1f} ms)")


if __name__ == "__main__":
    main()
