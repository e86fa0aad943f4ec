"""Benchmark ``trialbook export --format parquet``: throughput and peak memory on a big synthetic tree.

The tree is the one ``index_bench.py`` generates (its generators are reused): N trials, half
native (a block's ``artifacts/jobs/``), half Harbor (``jobs/``), each with a realistic ATIF
trajectory of 12-40 agent steps (tens of KB). Each export runs in a fresh process so that its
peak resident memory (``ru_maxrss``) is the export's alone; it is measured on the whole tree
and on a quarter of it; a streaming export's peak should not grow with the input.

Figures: trials/s, MB of trajectories/s, rows written per table, Parquet size, peak RSS.

Usage: python benchmarks/export_bench.py [--n 10000] [--dir DIR] [--keep] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from index_bench import VARIANTS, _plan, make_trajectory, write_harbor, write_native  # noqa: E402

_CHILD = """
import json, sys, time
from pathlib import Path
from trialbook.exports.parquet import export_parquet
sources = [(Path(p), layout) for p, layout in json.loads(sys.argv[1])]
t0 = time.perf_counter()
result = export_parquet(sources, Path(sys.argv[2]))
print(json.dumps({"seconds": time.perf_counter() - t0, "rows": result.rows, "jobs": len(result.jobs)}))
"""


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def export_in_child(sources: list[tuple[str, str]], out: Path) -> dict[str, Any]:
    """Run one export in a fresh interpreter; its figures plus its own peak RSS (MB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(sources), str(out)],
                          capture_output=True, text=True, check=True)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    # RUSAGE_CHILDREN keeps the largest child so far: exports run smallest first, so this is this one's
    figures["peak_rss_mb"] = round(max(peak_kb, before) / 1024, 1)
    figures["parquet_mb"] = round(_du(out) / 1e6, 1)
    return figures


def run(n: int, base: Path) -> dict[str, Any]:
    rng = random.Random(7)
    trajs = [make_trajectory(rng, VARIANTS[i % len(VARIANTS)][1]) for i in range(64)]
    half = n // 2
    t0 = time.perf_counter()
    write_native(base, _plan(half), trajs, rng)
    write_harbor(base, _plan(n - half), trajs, rng)
    generated = time.perf_counter() - t0
    native_jobs = base / "block" / "artifacts" / "jobs"
    harbor_jobs = base / "harbor" / "jobs"
    traj_mb = (_du(native_jobs) + _du(harbor_jobs)) / 1e6
    quarter = [(str(p), "native") for p in sorted(native_jobs.iterdir())[-1:]]  # the smallest native job
    small = export_in_child(quarter, base / "out-small")
    small_trials = small["rows"]["trials"]
    full = export_in_child([(str(native_jobs), "native"), (str(harbor_jobs), "harbor")], base / "out-full")
    secs = full["seconds"]
    return {
        "n_trials": full["rows"]["trials"], "jobs": full["jobs"], "tree_mb": round(traj_mb, 1),
        "generate_s": round(generated, 1), "export_s": round(secs, 2),
        "trials_per_s": round(full["rows"]["trials"] / secs), "input_mb_per_s": round(traj_mb / secs, 1),
        "rows": full["rows"], "parquet_mb": full["parquet_mb"], "peak_rss_mb": full["peak_rss_mb"],
        "small_export": {"n_trials": small_trials, "peak_rss_mb": small["peak_rss_mb"],
                         "trials_per_s": round(small_trials / small["seconds"])},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="trials to generate (half native, half Harbor)")
    parser.add_argument("--dir", type=Path, help="where to generate (default: a temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the generated tree and the export")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="export-bench-", dir=args.dir))
    try:
        figures = run(args.n, base)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    f = figures
    print(f"Parquet export of {f['n_trials']:,} trials in {f['jobs']} jobs ({f['tree_mb']:,} MB of job files, "
          f"generated in {f['generate_s']} s)")
    print(f"  export:       {f['export_s']} s = {f['trials_per_s']:,} trials/s, {f['input_mb_per_s']} MB of input/s")
    print("  rows:         " + ", ".join(f"{k} {v:,}" for k, v in f["rows"].items()))
    print(f"  parquet:      {f['parquet_mb']} MB")
    print(f"  peak RSS:     {f['peak_rss_mb']} MB for the whole tree; {f['small_export']['peak_rss_mb']} MB for one "
          f"job of {f['small_export']['n_trials']:,} trials (streaming: it should barely grow)")
    if args.keep:
        print(f"  kept in {base}")


if __name__ == "__main__":
    main()
