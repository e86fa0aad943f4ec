"""Benchmark ``trialbook show PATH`` on a Harbor job against Harbor's own load of the same job.

Writes one Harbor job of N trials in Harbor 0.25's own result format (the job and trial files of
the recorded fixture ``tests/fixtures/harbor/jobs/mixed-agents`` as templates, every trial with a
realistic ATIF trajectory from ``index_bench.py``), then times, each as a fresh process, best of
``--repeat``:

* Harbor: what its viewer serves for a job page, by its own code: ``create_app(jobs_dir)`` and the
  ``/api/jobs/{job}`` and ``/api/jobs/{job}/chart-trials`` endpoints called directly (no HTTP),
  i.e. the job result plus every trial's ``TrialResult`` validated and summarised; and, the
  stricter comparison, Harbor's models alone (``JobResult`` and every ``TrialResult`` validated,
  token totals, no web framework imported). Runs in a
  Python 3.12 venv with ``harbor==0.25.0`` (``--harbor-python``; made at ``.venv-harbor-full``
  with uv when missing). The script checks that Harbor parsed every trial.
* trialbook: ``trialbook show JOB_DIR --json --no-write`` (no index: the path is read from its
  files, trajectories included for the turn and tool-call means Harbor does not report).

Prints wall and CPU seconds of both processes and the ratio (target: trialbook >= 2x faster).

Usage: python benchmarks/harbor_show.py [--n 4771] [--repeat 3] [--dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from index_bench import VARIANTS, _iso, _text, _trial_fields, make_trajectory  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "harbor" / "jobs" / "mixed-agents"
HARBOR_VENV = REPO / ".venv-harbor-full"
HARBOR_REQUIREMENT = "harbor==0.25.0"

#: Run in Harbor's venv: its viewer's job page data for one job, by its own code.
HARBOR_LOAD = """
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
from harbor.viewer.server import create_app
jobs_dir, job = Path(sys.argv[1]), sys.argv[2]
app = create_app(jobs_dir)
endpoints = {r.path: r.endpoint for r in app.routes if "GET" in (getattr(r, "methods", None) or ())}
t1 = time.perf_counter()
result = endpoints["/api/jobs/{job_name}"](job)
trials = endpoints["/api/jobs/{job_name}/chart-trials"](job)
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "n_trials": len(trials),
                  "n_results": sum(1 for t in trials if t.id is not None),
                  "n_total_trials": result["n_total_trials"]}))
"""


#: Run in Harbor's venv: the least Harbor does to present a job's trials, by its own models
#: (the job ``JobResult`` and every trial's ``TrialResult`` validated, tokens and cost totalled),
#: without the viewer's web framework.
HARBOR_MODELS = """
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
from harbor.models.job.result import JobResult
from harbor.models.trial.result import TrialResult
job = Path(sys.argv[1]) / sys.argv[2]
t1 = time.perf_counter()
result = JobResult.model_validate_json((job / "result.json").read_text())
trials = []
for d in sorted(p for p in job.iterdir() if p.is_dir()):
    r = TrialResult.model_validate_json((d / "result.json").read_text())
    trials.append((r.trial_name, r.task_name, r.compute_token_cost_totals()))
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "n_results": len(trials)}))
"""


def write_job(jobs_dir: Path, n: int, seed: int = 7) -> Path:
    """One Harbor job of ``n`` trials in Harbor's own format; returns its directory."""
    rng = random.Random(seed)
    trajs = [make_trajectory(rng, m) for _ in range(8) for _, m in VARIANTS]
    trial_tpl = orjson.loads((FIXTURE / "hello-file__GM7zwGc" / "result.json").read_bytes())
    job_result = orjson.loads((FIXTURE / "result.json").read_bytes())
    job_config = orjson.loads((FIXTURE / "config.json").read_bytes())
    job = jobs_dir / "harbor-show-bench"
    job.mkdir(parents=True)
    job_config["job_name"] = job.name
    job_result.update(n_total_trials=n)
    job_result["stats"].update(n_completed_trials=n)
    (job / "config.json").write_bytes(orjson.dumps(job_config, option=orjson.OPT_INDENT_2))
    (job / "result.json").write_bytes(orjson.dumps(job_result, option=orjson.OPT_INDENT_2))
    n_tasks = max(1, n // (len(VARIANTS) * 3))
    for i in range(n):
        f = _trial_fields(rng, i, n_tasks)
        tdir = job / f"{f['task']}__{rng.getrandbits(40):010x}"
        (tdir / "agent").mkdir(parents=True)
        (tdir / "verifier").mkdir()
        r = copy.deepcopy(trial_tpl)
        provider, model = f["model"].split("/", 1)
        r.update(id=str(uuid.UUID(int=rng.getrandbits(128))), task_name=f["task"], trial_name=tdir.name,
                 trial_uri=tdir.as_uri(), task_id={"path": f"tasks/{f['task']}"},
                 started_at=_iso(f["start"])[:-1], finished_at=_iso(f["end"])[:-1],
                 agent_execution={"started_at": _iso(f["start"])[:-1], "finished_at": _iso(f["end"])[:-1]})
        r["config"].update(trial_name=tdir.name, trials_dir=f"jobs/{job.name}")
        r["config"]["task"]["path"] = f"tasks/{f['task']}"
        r["config"]["agent"].update(name="mini-swe-agent", model_name=f["model"])
        r["agent_info"] = {"name": "mini-swe-agent", "version": "1.10",
                           "model_info": {"name": model, "provider": provider}}
        r["agent_result"].update(n_input_tokens=f["prompt"], n_cache_tokens=f["prompt"] // 2,
                                 n_output_tokens=f["completion"], cost_usd=f["prompt"] * 3e-6, model_usage=None)
        r["verifier_result"] = None if f["reward"] is None else {"rewards": {"reward": f["reward"]}}
        r["exception_info"] = None if f["reward"] is not None else {
            "exception_type": "AgentTimeoutError", "exception_message": "agent timed out",
            "exception_traceback": "Traceback ...", "occurred_at": _iso(f["end"])[:-1]}
        (tdir / "result.json").write_bytes(orjson.dumps(r, option=orjson.OPT_INDENT_2))
        (tdir / "config.json").write_bytes(orjson.dumps(r["config"], option=orjson.OPT_INDENT_2))
        (tdir / "trial.log").write_text(_text(rng, 40))
        (tdir / "agent" / "trajectory.json").write_bytes(trajs[i % len(trajs)])
        if f["reward"] is not None:
            (tdir / "verifier" / "reward.txt").write_text(f"{f['reward']:g}\n")
    return job


def harbor_python(given: str | None) -> str:
    """The interpreter of a venv with Harbor (and its viewer's dependencies) installed."""
    if given:
        return given
    python = HARBOR_VENV / "bin" / "python"
    if not python.exists():
        sys.path.insert(0, str(REPO / "tests"))
        from harbor_env import find_python312

        base = find_python312()
        if base is None:
            sys.exit("harbor_show.py: Harbor needs Python >= 3.12; none found (give --harbor-python)")
        uv = shutil.which("uv") or str(REPO / ".venv-tools" / "bin" / "uv")
        print(f"making {HARBOR_VENV} ({HARBOR_REQUIREMENT}) ...", file=sys.stderr)
        subprocess.run([uv, "venv", "-q", "-p", base, str(HARBOR_VENV)], check=True)
        subprocess.run([uv, "pip", "install", "-q", "-p", str(python), HARBOR_REQUIREMENT], check=True)
    return str(python)


def timed(cmd: list[str], repeat: int, cwd: Path) -> tuple[float, float, str]:
    """Best wall and best CPU seconds of ``repeat`` fresh runs of ``cmd`` (after one warm-up),
    and the last run's stdout."""
    warm = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)  # page cache, .pyc files
    if warm.returncode != 0:
        sys.exit(f"{cmd[0]} failed: {warm.stderr[-2000:]}")
    walls, cpus, out = [], [], ""
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
        walls.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            sys.exit(f"{cmd[0]} failed: {proc.stderr[-2000:]}")
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        out = proc.stdout
    return min(walls), min(cpus), out


def run(n: int, repeat: int, base: Path, harbor: str) -> dict[str, Any]:
    """Generate the job and take both measurements; returns the figures."""
    t = time.perf_counter()
    job = write_job(base / "jobs", n)
    figures: dict[str, Any] = {"n_trials": n, "generate_s": round(time.perf_counter() - t, 1)}
    time.sleep(1.1)
    h_wall, h_cpu, out = timed([harbor, "-c", HARBOR_LOAD, str(job.parent), job.name], repeat, base)
    loaded = json.loads(out)
    if loaded["n_results"] != n:
        sys.exit(f"Harbor parsed {loaded['n_results']} of {n} trial results: the generated files are not its format")
    m_wall, m_cpu, out = timed([harbor, "-c", HARBOR_MODELS, str(job.parent), job.name], repeat, base)
    models = json.loads(out)
    assert models["n_results"] == n, models
    ours = [sys.executable, "-m", "trialbook.cli.main", "show", str(job), "--json", "--no-write"]
    t_wall, t_cpu, out = timed(ours, repeat, base)
    summary = json.loads(out)
    summary = summary[0] if isinstance(summary, list) else summary
    shown = summary.get("summary", summary)
    if shown.get("n_trials") != n:
        sys.exit(f"trialbook show counted {shown.get('n_trials')} trials of {n}")
    figures.update(harbor_viewer_wall_s=round(h_wall, 3), harbor_viewer_cpu_s=round(h_cpu, 3),
                   harbor_viewer_import_s=round(loaded["import_s"], 3),
                   harbor_viewer_load_s=round(loaded["load_s"], 3),
                   harbor_models_wall_s=round(m_wall, 3), harbor_models_cpu_s=round(m_cpu, 3),
                   harbor_models_import_s=round(models["import_s"], 3),
                   harbor_models_load_s=round(models["load_s"], 3),
                   trialbook_wall_s=round(t_wall, 3), trialbook_cpu_s=round(t_cpu, 3),
                   speedup_vs_viewer_wall=round(h_wall / t_wall, 2),
                   speedup_vs_models_wall=round(m_wall / t_wall, 2),
                   speedup_vs_models_cpu=round(m_cpu / t_cpu, 2))
    return figures


def main() -> None:
    """Command line: run the benchmark and print the figures (or JSON)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4771, help="trials in the job (issue 20 measured 4,771)")
    ap.add_argument("--repeat", type=int, default=3, help="fresh processes per side; the best counts")
    ap.add_argument("--harbor-python", help="python of a venv with harbor 0.25 (default: .venv-harbor-full, made if missing)")
    ap.add_argument("--dir", type=Path, default=None, help="where to generate (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the generated job")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    harbor = harbor_python(args.harbor_python)
    base = Path(tempfile.mkdtemp(prefix="tb-harbor-show-", dir=args.dir))
    try:
        figures = run(args.n, args.repeat, base, harbor)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"harbor show benchmark, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
          f"job at {base}{'' if args.keep else ' (removed)'}")
    for key, value in figures.items():
        print(f"  {key:20} {value:>10}")
    print(f"  trialbook show vs Harbor's viewer (process): {figures['speedup_vs_viewer_wall']:.2f}x faster; "
          f"vs Harbor's models alone: {figures['speedup_vs_models_wall']:.2f}x (wall), "
          f"{figures['speedup_vs_models_cpu']:.2f}x (CPU); target >= 2x")


if __name__ == "__main__":
    main()
