"""Benchmark results/index.db: cold and warm reindex, ``show`` from the index, and the naive way.

Generates a synthetic tree of N trials (default 10,000; 100,000 works), half in the native
layout (a block's ``artifacts/jobs/``) and half in the Harbor layout (``jobs/``), in jobs of
decreasing size. Every trial has a realistic ATIF ``agent/trajectory.json`` (12-40 steps of
reasoning, shell tool calls and outputs; tens of KB) besides its small record files, so the
index has to avoid reading what it does not need.

Measured (files are in the page cache after generation, as on a machine that just ran them):

1. cold reindex (empty index) -> trials/s                 target >= 2,000 trials/s
2. warm reindex, nothing changed                          target < 2 s at 100k trials
3. warm reindex after touching 1% of the trials (their trial.json / result.json rewritten)
4. ``show`` of the largest job from the index (refresh of that job + summary), in-process and
   as a CLI process                                       target < 0.3 s; and ``show --last``
   in the block as a whole process, best of 7 (wall and CPU)  target < 0.25 s
5. the same summary the naive way: json.load + pydantic validation of every trial record and
   trajectory of that job, as tools without an index do.

Usage: python benchmarks/index_bench.py [--n 10000] [--dir DIR] [--keep] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from trialbook.app.show import summary_via_index
from trialbook.index.locate import JobRef
from trialbook.index.reindex import RootSpec, reindex
from trialbook.model.trajectory import Trajectory, parse_trajectory
from trialbook.model.trial import TrialRecord
from trialbook.results.summary import JobInfo, build_summary, facts_from_record

_SENTENCE = ("the test fails because the parser drops the trailing newline before the final token so we "
             "patch the tokenizer and rerun pytest with verbose output to confirm every case passes")
WORDS = _SENTENCE.split()
VARIANTS = [("claude", "anthropic/claude-sonnet-4"), ("gpt", "openai/gpt-5"), ("qwen", "hosted_vllm/qwen3-32b")]
T0 = 1_780_000_000


def _text(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n_words))


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def make_trajectory(rng: random.Random, model: str) -> bytes:
    """One valid ATIF v1.6 trajectory: 12-40 agent steps with reasoning, a shell call and its output."""
    t = T0 + rng.random() * 1000
    steps: list[dict[str, Any]] = [
        {"step_id": 1, "timestamp": _iso(t), "source": "system", "message": _text(rng, 120)},
        {"step_id": 2, "timestamp": _iso(t), "source": "user", "message": _text(rng, 200)},
    ]
    for i in range(rng.randint(12, 40)):
        t += rng.random() * 20
        sid = len(steps) + 1
        call = f"call_{sid}"
        steps.append({
            "step_id": sid, "timestamp": _iso(t), "source": "agent", "model_name": model,
            "message": _text(rng, rng.randint(10, 60)), "reasoning_content": _text(rng, rng.randint(20, 120)),
            "tool_calls": [{"tool_call_id": call, "function_name": rng.choice(["bash", "bash", "edit", "view"]),
                            "arguments": {"command": f"cd /app && {_text(rng, 6)}"}}],
            "observation": {"results": [{"source_call_id": call, "content": _text(rng, rng.randint(40, 300))}]},
            "metrics": {"prompt_tokens": 2000 + 400 * i, "completion_tokens": rng.randint(40, 400),
                        "cached_tokens": 1500 + 380 * i, "cost_usd": 0.001 * rng.random()},
        })
    data = {"schema_version": "ATIF-v1.6", "session_id": f"s{rng.getrandbits(48):x}",
            "agent": {"name": "mini-swe-agent", "version": "1.10", "model_name": model}, "steps": steps}
    parse_trajectory(data)  # every generated file is valid ATIF
    return orjson.dumps(data)


def _plan(n: int) -> list[int]:
    """Job sizes adding up to ``n``, largest first (weights J, J-1, ..., 1)."""
    n_jobs = max(2, n // 2500)
    weights = list(range(n_jobs, 0, -1))
    sizes = [n * w // sum(weights) for w in weights]
    sizes[0] += n - sum(sizes)
    return sizes


def _trial_fields(rng: random.Random, index: int, n_tasks: int) -> dict[str, Any]:
    name, model = VARIANTS[index % len(VARIANTS)]
    task = f"task-{(index // len(VARIANTS)) % n_tasks:04d}"
    attempt = index // (len(VARIANTS) * n_tasks) + 1
    roll = rng.random()
    outcome = "resolved" if roll < 0.45 else "unresolved" if roll < 0.9 else rng.choice(
        ["agent_error", "timeout", "verifier_error", "infra_error"])
    reward = 1.0 if outcome == "resolved" else 0.0 if outcome == "unresolved" else None
    start = T0 + index * 3.0
    return {"variant": name, "model": model, "task": task, "attempt": attempt, "outcome": outcome,
            "reward": reward, "start": start, "end": start + 30 + rng.random() * 600,
            "prompt": rng.randint(20_000, 400_000), "completion": rng.randint(1_000, 20_000),
            "turns": rng.randint(12, 40)}


def write_native(root: Path, sizes: list[int], trajs: list[bytes], rng: random.Random) -> list[Path]:
    """A native block with jobs of ``sizes``; returns the trial.json paths."""
    block = root / "block"
    (block / "artifacts" / "jobs").mkdir(parents=True)
    (block / "config.yaml").write_text("kind: eval\nname: bench\ntasks: {path: tasks}\n"
                                       "variants: [{name: nop, agent: nop}]\n")
    files = []
    for j, size in enumerate(sizes):
        job = block / "artifacts" / "jobs" / f"native-job-{j:02d}"
        job.mkdir()
        (job / "config.yaml").write_text("kind: eval\nname: bench\n")
        (job / "results.json").write_bytes(orjson.dumps({"job": job.name, "status": "completed",
                                                          "started_at": _iso(T0 + j), "finished_at": _iso(T0 + j + 9e3)}))
        n_tasks = max(1, size // (len(VARIANTS) * 3))
        for i in range(size):
            f = _trial_fields(rng, i, n_tasks)
            tdir = job / f"{f['task']}__{f['variant']}__{f['attempt']}_{i}"
            (tdir / "agent").mkdir(parents=True)
            (tdir / "evaluation").mkdir()
            rec = {"schema": "trialbook.trial/1", "trial_name": tdir.name, "job": job.name, "task": f["task"],
                   "variant": f["variant"], "agent": "mini-swe-agent", "model": f["model"], "attempt": f["attempt"],
                   "status": "finished", "outcome": f["outcome"], "reward": f["reward"],
                   "rewards": None if f["reward"] is None else {"reward": f["reward"]},
                   "started_at": _iso(f["start"]), "finished_at": _iso(f["end"]),
                   "duration_s": round(f["end"] - f["start"], 3), "n_turns": f["turns"], "n_tool_calls": f["turns"],
                   "usage": {"prompt_tokens": f["prompt"], "completion_tokens": f["completion"],
                             "total_tokens": f["prompt"] + f["completion"], "cost_usd": f["prompt"] * 3e-6,
                             "n_llm_calls": f["turns"]},
                   "timings": {"agent": {"started_at": _iso(f["start"]), "finished_at": _iso(f["end"])}}}
            (tdir / "trial.json").write_bytes(orjson.dumps(rec, option=orjson.OPT_INDENT_2))
            (tdir / "agent" / "trajectory.json").write_bytes(trajs[i % len(trajs)])
            (tdir / "evaluation" / "verdict.json").write_bytes(orjson.dumps({"reward": f["reward"]}))
            (tdir / "evaluation" / "test_output.txt").write_text(_text(rng, 80))
            files.append(tdir / "trial.json")
    return files


def write_harbor(root: Path, sizes: list[int], trajs: list[bytes], rng: random.Random) -> list[Path]:
    """A Harbor ``jobs/`` root with jobs of ``sizes``; returns the trial result.json paths."""
    files = []
    for j, size in enumerate(sizes):
        job = root / "harbor" / "jobs" / f"harbor-job-{j:02d}"
        job.mkdir(parents=True)
        (job / "config.json").write_bytes(orjson.dumps({"job_name": job.name, "n_attempts": 3,
                                                        "agents": [{"name": "mini-swe-agent"}]}))
        (job / "result.json").write_bytes(orjson.dumps({"id": f"job-{j}", "started_at": _iso(T0 + j)[:-1],
                                                        "finished_at": _iso(T0 + j + 9e3)[:-1], "n_total_trials": size,
                                                        "stats": {"n_completed_trials": size}}))
        n_tasks = max(1, size // (len(VARIANTS) * 3))
        for i in range(size):
            f = _trial_fields(rng, i, n_tasks)
            tdir = job / f"{f['task']}__{rng.getrandbits(40):010x}"
            (tdir / "agent").mkdir(parents=True)
            (tdir / "verifier").mkdir()
            exc = None if f["reward"] is not None else {
                "exception_type": "AgentTimeoutError", "exception_message": "agent timed out",
                "exception_traceback": "Traceback ...", "occurred_at": _iso(f["end"])}
            result = {
                "id": f"t-{j}-{i}", "task_name": f["task"], "trial_name": tdir.name,
                "trial_uri": tdir.as_uri(), "task_id": {"path": f"tasks/{f['task']}"}, "source": "tasks",
                "config": {"trial_name": tdir.name, "agent": {"name": "mini-swe-agent", "model_name": f["model"],
                                                              "kwargs": {"temperature": 0.0}}},
                "agent_info": {"name": "mini-swe-agent", "version": "1.10",
                               "model_info": {"name": f["model"].split("/")[-1], "provider": f["model"].split("/")[0]}},
                "agent_result": {"n_input_tokens": f["prompt"], "n_cache_tokens": f["prompt"] // 2,
                                 "n_output_tokens": f["completion"], "cost_usd": f["prompt"] * 3e-6,
                                 "metadata": {"n_episodes": f["turns"]}},
                "verifier_result": None if f["reward"] is None else {"rewards": {"reward": f["reward"]}},
                "exception_info": exc, "started_at": _iso(f["start"])[:-1] + "Z",
                "finished_at": _iso(f["end"])[:-1] + "Z",
                "agent_execution": {"started_at": _iso(f["start"]), "finished_at": _iso(f["end"])},
            }
            (tdir / "result.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
            (tdir / "config.json").write_bytes(orjson.dumps(result["config"], option=orjson.OPT_INDENT_2))
            (tdir / "trial.log").write_text(_text(rng, 40))
            (tdir / "agent" / "trajectory.json").write_bytes(trajs[i % len(trajs)])
            if f["reward"] is not None:
                (tdir / "verifier" / "reward.txt").write_text(f"{f['reward']:g}\n")
            files.append(tdir / "result.json")
    return files


def touch(files: list[Path], fraction: float, rng: random.Random) -> int:
    """Rewrite ``fraction`` of the record files with a flipped reward (a real change, new mtime)."""
    chosen = rng.sample(files, max(1, int(len(files) * fraction)))
    for path in chosen:
        data = orjson.loads(path.read_bytes())
        if "verifier_result" in data and data["verifier_result"]:
            data["verifier_result"]["rewards"]["reward"] = 1.0 - data["verifier_result"]["rewards"]["reward"]
        elif data.get("reward") is not None:
            data["reward"] = 1.0 - data["reward"]
            data["outcome"] = "resolved" if data["reward"] > 0 else "unresolved"
        path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    return len(chosen)


def naive_summary(job_dir: Path, layout: str) -> dict[str, Any]:
    """The summary without an index: load and validate every record and trajectory of the job."""
    facts = []
    for tdir in sorted(p for p in job_dir.iterdir() if p.is_dir()):
        with open(tdir / "agent" / "trajectory.json") as fh:
            Trajectory.model_validate(json.load(fh))
        if layout == "native":
            with open(tdir / "trial.json") as fh:
                facts.append(facts_from_record(TrialRecord.model_validate(json.load(fh))))
        else:
            with open(tdir / "result.json") as fh:
                r = json.load(fh)
            reward = (r.get("verifier_result") or {}).get("rewards", {}).get("reward")
            facts.append(facts_from_record(TrialRecord(
                trial_name=r["trial_name"], job=job_dir.name, task=r["task_name"],
                variant=r["config"]["agent"]["model_name"], agent="mini-swe-agent", attempt=1, status="finished",
                outcome="agent_error" if r.get("exception_info") else "resolved" if reward else "unresolved",
                reward=reward)))
    return build_summary(JobInfo(job=job_dir.name, job_dir=str(job_dir), layout=layout), facts)


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def show_last_process(block: Path, repeat: int = 7) -> dict[str, float]:
    """``trialbook show --last`` as a whole process in the block, after one run that refreshes the
    index: best wall and CPU seconds of ``repeat`` runs (printing JSON, and printing tables and
    writing summary.json/.md as a person's plain ``show --last`` does)."""
    out: dict[str, float] = {}
    for key, args in (("show_last_json", ["--json", "--no-write"]), ("show_last_tables", [])):
        cmd = [sys.executable, "-m", "trialbook.cli.main", "show", "--last", *args]
        subprocess.run(cmd, cwd=block, capture_output=True, check=True)
        walls, cpus = [], []
        for _ in range(repeat):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            subprocess.run(cmd, cwd=block, capture_output=True, check=True)
            walls.append(time.perf_counter() - t)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        out[f"{key}_cli_s"], out[f"{key}_cli_cpu_s"] = round(min(walls), 3), round(min(cpus), 3)
    return out


def run(n: int, base: Path) -> dict[str, Any]:
    """Generate ``n`` trials under ``base`` and take every measurement; returns the figures."""
    rng = random.Random(7)
    t = time.perf_counter()
    trajs = [make_trajectory(rng, m) for _ in range(16) for _, m in VARIANTS]
    sizes = _plan(n // 2)
    native_files = write_native(base, sizes, trajs, rng)
    harbor_files = write_harbor(base, _plan(n - n // 2), trajs, rng)
    gen_s = time.perf_counter() - t
    db = base / "block" / "results" / "index.db"
    roots = [RootSpec(base / "block" / "artifacts" / "jobs", "native"), RootSpec(base / "harbor" / "jobs", "harbor")]
    time.sleep(1.1)  # files older than the racy window, as in a tree written before the reindex
    out: dict[str, Any] = {"n_trials": n, "n_jobs": 2 * len(sizes), "largest_job_trials": sizes[0],
                           "trajectory_kb_mean": round(sum(map(len, trajs)) / len(trajs) / 1024, 1),
                           "generate_s": round(gen_s, 1)}
    for layout, root in (("native", roots[0]), ("harbor", roots[1])):
        stats, secs = _timed(reindex, base / f"{layout}.db", [root])
        out[f"cold_{layout}_trials_per_s"] = round(stats.trials_read / secs)
    stats, secs = _timed(reindex, db, roots)
    out["cold_s"], out["cold_trials_per_s"] = round(secs, 2), round(stats.trials_read / secs)
    time.sleep(1.1)  # let the racy window of the cold run pass, as between real runs
    stats, secs = _timed(reindex, db, roots)
    out["warm_unchanged_s"], out["warm_unchanged_read"] = round(secs, 3), stats.trials_read
    touched = touch(native_files, 0.01, rng) + touch(harbor_files, 0.01, rng)
    time.sleep(1.1)
    stats, secs = _timed(reindex, db, roots)
    out["touched"], out["warm_touched_s"], out["warm_touched_read"] = touched, round(secs, 3), stats.trials_read
    for layout, name, parent in (("native", "native-job-00", base / "block" / "artifacts" / "jobs"),
                                 ("harbor", "harbor-job-00", base / "harbor" / "jobs")):
        ref = JobRef(name, parent / name, layout)
        summary, secs = _timed(summary_via_index, ref, db)
        out[f"show_{layout}_api_s"] = round(secs, 3)
        cmd = [sys.executable, "-m", "trialbook.cli.main", "show", name, "--json", "--no-write", "--db", str(db)]
        t = time.perf_counter()
        proc = subprocess.run(cmd, cwd=base / "block", capture_output=True, text=True)
        out[f"show_{layout}_cli_s"] = round(time.perf_counter() - t, 3)
        assert proc.returncode == 0, proc.stderr
        naive, secs = _timed(naive_summary, ref.job_dir, layout)
        out[f"naive_{layout}_s"] = round(secs, 3)
        out[f"show_{layout}_speedup"] = round(secs / out[f"show_{layout}_api_s"], 1)
        if layout == "native":
            assert naive["overall_success_rate"] == summary["overall_success_rate"], "naive and index disagree"
    out.update(show_last_process(base / "block"))
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "trialbook.cli.main", "--help"], capture_output=True, check=True)
    out["cli_startup_s"] = round(time.perf_counter() - t, 3)
    return out


def main() -> None:
    """Command line: run the benchmark and print the figures (with targets) or JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="number of trials (half native, half harbor)")
    ap.add_argument("--dir", type=Path, default=None, help="where to generate (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the generated tree")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="tb-index-bench-", dir=args.dir))
    try:
        figures = run(args.n, base)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    targets = {"cold_native_trials_per_s": ">= 20000", "cold_harbor_trials_per_s": ">= 8000",
               "cold_trials_per_s": ">= 2000", "warm_unchanged_s": "< 1 at 100k",
               "warm_touched_s": "< 1.5 for 1% of 100k", "show_native_api_s": "< 0.3",
               "show_harbor_api_s": "< 0.3", "show_last_json_cli_s": "< 0.25", "show_last_tables_cli_s": "< 0.25"}
    print(f"index benchmark, {os.cpu_count()} CPUs, tree at {base}{'' if args.keep else ' (removed)'}")
    for key, value in figures.items():
        print(f"  {key:28} {value:>12}  {targets.get(key, '')}")


if __name__ == "__main__":
    main()
