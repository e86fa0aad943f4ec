"""Benchmark the dashboard: build time of a 10,000-trial site and page-open times in Chromium.

Generates 20 jobs of 500 trials (10 in a native block, 10 in a Harbor ``jobs/`` root; each
trial with a realistic ATIF trajectory of tens of KB, from ``index_bench``), then measures:

1. a cold build (empty index and cache) of the whole site        target < 30 s on 2 cores
2. a warm rebuild with nothing changed, and after 1% of the trials were rewritten
3. the build of one more job holding a single 200 MB trajectory (2,000 steps of 100 KB outputs)
4. page-open times in Chromium (Playwright, the system's /usr/bin/chromium), opened from disk:
   "ready" = the page's content is on screen, "plots" = plotly has drawn every chart.
   Median of 3 opens per page, each in a fresh tab, after one warm-up open.

Usage: python benchmarks/dashboard_build.py [--n 10000] [--jobs 20] [--dir DIR] [--keep] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).parent))
from index_bench import VARIANTS, make_trajectory, touch, write_harbor, write_native  # noqa: E402

from trialbook.dashboard import build_site, resolve_site  # noqa: E402
from trialbook.dashboard.jobpage import job_id, trial_id  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def write_huge_trial(jobs_dir: Path, steps: int = 2000, chars: int = 100_000) -> Path:
    """A job with one trial whose trajectory is ~``steps * chars`` bytes (200 MB by default)."""
    job = jobs_dir / "huge-job"
    trial = job / "huge__v__1"
    (trial / "agent").mkdir(parents=True)
    (job / "config.yaml").write_text("kind: eval\n")
    line = ("lorem ipsum dolor sit amet " * 4)[:99] + "\n"
    out = line * (chars // 100)
    with open(trial / "agent" / "trajectory.json", "wb") as fh:
        fh.write(b'{"schema_version":"ATIF-v1.6","session_id":"huge","agent":{"name":"a","version":"1"},"steps":[')
        fh.write(orjson.dumps({"step_id": 1, "source": "user", "message": "go"}))
        for i in range(2, steps + 1):
            fh.write(b"," + orjson.dumps({
                "step_id": i, "source": "agent", "message": f"step {i}",
                "tool_calls": [{"tool_call_id": f"c{i}", "function_name": "bash", "arguments": {"command": "cat big.log"}}],
                "observation": {"results": [{"source_call_id": f"c{i}", "content": out}]}}))
        fh.write(b"]}")
    rec = {"schema": "trialbook.trial/1", "trial_name": trial.name, "job": job.name, "task": "huge", "variant": "v",
           "agent": "a", "attempt": 1, "status": "finished", "outcome": "resolved", "reward": 1.0,
           "started_at": "2026-01-01T00:00:00Z", "finished_at": "2026-01-01T01:00:00Z", "duration_s": 3600.0}
    (trial / "trial.json").write_bytes(orjson.dumps(rec))
    return trial


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def page_times(site: Path, routes: dict[str, str], start: str, repeats: int = 3) -> dict[str, dict[str, float]]:
    """Median seconds until each route's content is painted ("shown") and its charts drawn.

    Measured in the page (``performance.now()``): ``tab_*`` from opening the page in a new tab
    (plotly.js is then compiled from scratch when the page has charts), ``nav_*`` from the
    click that reaches it from another page of the open dashboard (a hash route).
    """
    from playwright.sync_api import sync_playwright

    out: dict[str, dict[str, float]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        warm = ctx.new_page()
        warm.goto(f"file://{site}/index.html")
        warm.wait_for_selector("body[data-ready]")
        warm.close()
        for label, route in routes.items():
            tab: dict[str, list[float]] = {"shown": [], "plotted": []}
            for _ in range(repeats):
                pg = ctx.new_page()
                pg.goto(f"file://{site}/index.html{route}")
                pg.wait_for_selector("body[data-plotted]", timeout=120000)
                assert pg.get_attribute("body", "data-ready") != "error", (route, pg.inner_text("main"))
                t = pg.evaluate("TB.timing")
                tab["shown"].append(t["shown"] / 1000)
                tab["plotted"].append(t["plotted"] / 1000)
                pg.close()
            nav: dict[str, list[float]] = {"shown": [], "plotted": []}
            pg = ctx.new_page()
            pg.goto(f"file://{site}/index.html{start}")  # the dashboard is open (plotly loaded)
            pg.wait_for_selector("body[data-plotted]", timeout=120000)
            for _ in range(repeats):
                pg.evaluate("() => { location.hash = '#/sft'; }")
                pg.wait_for_selector("body[data-plotted='sft']", timeout=60000)
                pg.evaluate("route => { location.hash = route || '#/'; }", route)
                pg.wait_for_selector("body[data-plotted]:not([data-plotted='sft'])", timeout=60000)
                t = pg.evaluate("TB.timing")
                nav["shown"].append((t["shown"] - t["start"]) / 1000)
                nav["plotted"].append((t["plotted"] - t["start"]) / 1000)
            pg.close()
            out[label] = {f"{kind}_{what}_s": round(statistics.median(vals), 3)
                          for kind, d in (("tab", tab), ("nav", nav)) for what, vals in d.items()}
        browser.close()
    return out


def run(n: int, n_jobs: int, base: Path) -> dict[str, Any]:
    rng = random.Random(7)
    trajs = [make_trajectory(rng, VARIANTS[i % len(VARIANTS)][1]) for i in range(50)]
    half = n_jobs // 2
    sizes = [n // n_jobs] * n_jobs
    sizes[0] += n - sum(sizes)
    t0 = time.perf_counter()
    native = write_native(base, sizes[:half], trajs, rng)
    write_harbor(base, sizes[half:], trajs, rng)
    gen_s = time.perf_counter() - t0
    time.sleep(1.1)  # files written within a second of a read are re-read next time (racy); not what we measure
    block = base / "block"
    spec = resolve_site(block, [base / "harbor" / "jobs"])
    cold, cold_s = _timed(build_site, spec)
    warm, warm_s = _timed(build_site, spec)
    touched = touch(native, 0.01, rng)
    time.sleep(1.1)  # let the touched files age past the racy margin
    inc, inc_s = _timed(build_site, spec)
    huge = write_huge_trial(block / "artifacts" / "jobs")
    huge_mb = (huge / "agent" / "trajectory.json").stat().st_size / 1e6
    hb, huge_s = _timed(build_site, spec)
    biggest = block / "artifacts" / "jobs" / "native-job-00"
    some_trial = sorted(p for p in biggest.iterdir() if p.is_dir())[0]
    jid = job_id(str(biggest))
    routes = {
        "jobs list (21 jobs)": "",
        f"job page ({sizes[0]} trials)": f"#/job/{jid}",
        "trial page": f"#/trial/{jid}/{trial_id(str(some_trial))}",
        "compare two variants": f"#/compare?a={jid}.0&b={jid}.1",
        f"trial page, {huge_mb:.0f} MB trajectory": f"#/trial/{job_id(str(huge.parent))}/{trial_id(str(huge))}",
    }
    pages = page_times(spec.out, routes, routes[f"job page ({sizes[0]} trials)"]) if Path(CHROMIUM).exists() else {"skipped": "no /usr/bin/chromium"}
    site_mb = sum(f.stat().st_size for f in spec.out.rglob("*") if f.is_file()) / 1e6
    return {
        "trials": n, "jobs": n_jobs, "cpus": os.cpu_count(), "load_avg": os.getloadavg(),
        "generate_s": round(gen_s, 2),
        "cold_build_s": round(cold_s, 2), "cold_reindex_s": cold.reindex_s, "cold_trial_pages": cold.trials_built,
        "warm_build_s": round(warm_s, 2), "warm_trial_pages": warm.trials_built,
        "touched_trials": touched, "incremental_build_s": round(inc_s, 2), "incremental_trial_pages": inc.trials_built,
        "huge_trajectory_mb": round(huge_mb, 1), "huge_build_s": round(huge_s, 2), "huge_trial_pages": hb.trials_built,
        "site_mb": round(site_mb, 1), "pages": pages,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--jobs", type=int, default=20)
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="dash-bench-", dir=args.dir))
    try:
        result = run(args.n, args.jobs, base)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for k, v in result.items():
        if k != "pages":
            print(f"{k:>26}: {v}")
    for label, t in (result["pages"].items() if isinstance(result["pages"], dict) else []):
        print(f"{label:>40}: {t}")
    if args.keep:
        print(f"tree and site kept in {base}")


if __name__ == "__main__":
    main()
