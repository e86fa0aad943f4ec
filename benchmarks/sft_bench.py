"""Benchmark SFT conversion of a job: throughput per core, peak memory at two input sizes, workers.

The input is realistic in shape: a shared system prompt and tool list per variant, a task
instruction per task, then 12-40 agent steps with reasoning, shell/edit tool calls (some
parallel) and outputs cut from real source files (the Python standard library), so tokens
per byte are those of code and logs. It is written as a native job (``trial.json`` and
``agent/trajectory.json`` per trial), and each conversion runs ``convert_job`` in a fresh
process, as ``trialbook convert`` does: reading, ATIF validation, conversion, token counting
and writing are all timed. For each size (``--sizes``) it measures, in turn:

1. no exact tokenization (tokenizer ``none``), 1 process and ``--workers`` processes;
2. exact tokenization (``--tokenizer``), 1 process and ``--workers`` processes;
3. the same again with the token-count cache filled by a first run (a re-conversion).

Then, for each number of trials (``--trials``), a job of that many small trajectories (a few KB
each) is converted without exact tokenization, in 1 and ``--workers`` processes: its peak RSS
shows what memory grows with the number of trials rather than with the input bytes.

CPU seconds are those of the conversion in the converting process and its workers (start-up
and imports excluded; MB per CPU-second is a per-core figure whatever the load); peak RSS is
the largest of those processes, measured in a separate run of the same conversion.

Usage: python benchmarks/sft_bench.py [--sizes 1000,4000] [--trials 5000,40000] [--workers 2] [--tokenizer o200k_base] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "bash",
            "description": "Run a shell command in the task container and return stdout and stderr.",
            "parameters": {
                "type": "object",
                "properties": {"cmd": {"type": "string", "description": "The command line."}},
                "required": ["cmd"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "str_replace",
            "description": "Replace one exact occurrence of old with new in a file.",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string"}, "old": {"type": "string"}, "new": {"type": "string"}},
                "required": ["path", "old", "new"],
            },
        },
    },
]


def _corpus() -> list[str]:
    """Source files of the standard library: real code and prose, deterministic."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    return [p.read_text(encoding="utf-8", errors="replace") for p in sorted(stdlib.glob("*.py"))[:150]]


class Generator:
    """Builds ATIF trajectories as JSON bytes from a seeded random source and a text corpus."""

    def __init__(self, seed: int, scale: float = 1.0) -> None:
        self.rng = random.Random(seed)
        self.corpus = _corpus()
        #: Text lengths are multiplied by this (small trajectories for the trial-count runs).
        self.scale = scale
        self.system = {
            variant: f"You are agent {variant}, an expert software engineer.\n" + self.snippet(2500, 4000)
            for variant in ("v1", "v2")
        }

    def snippet(self, low: int, high: int) -> str:
        text = self.rng.choice(self.corpus)
        size = int(self.rng.randint(low, high) * self.scale)
        start = self.rng.randrange(0, max(1, len(text) - size))
        return text[start : start + size]

    def step(self, index: int, call_index: int) -> tuple[dict[str, Any], int]:
        rng = self.rng
        calls, results = [], []
        for _ in range(2 if rng.random() < 0.15 else 1):
            call_id = f"call_{call_index}"
            call_index += 1
            if rng.random() < 0.7:
                args = {"cmd": rng.choice(["cat", "grep -n def", "sed -n 1,80p", "python -m pytest -x"]) + " src/mod.py"}
                output = self.snippet(200, 2500)
            else:
                args = {"path": "src/mod.py", "old": self.snippet(40, 300), "new": self.snippet(40, 300)}
                output = "The file src/mod.py has been edited."
            calls.append({"tool_call_id": call_id, "function_name": "bash" if "cmd" in args else "str_replace", "arguments": args})
            results.append({"source_call_id": call_id, "content": output})
        step = {
            "step_id": index,
            "timestamp": "2025-11-21T17:20:00Z",
            "source": "agent",
            "model_name": "qwen3-coder",
            "message": self.snippet(0, 200) if rng.random() < 0.3 else "",
            "reasoning_content": self.snippet(100, 800),
            "tool_calls": calls,
            "observation": {"results": results},
            "metrics": {"prompt_tokens": rng.randint(2000, 30000), "completion_tokens": rng.randint(50, 800)},
        }
        return step, call_index

    def trajectory(self, task: int, variant: str, n_steps: tuple[int, int] = (12, 40)) -> bytes:
        steps: list[dict[str, Any]] = [
            {"step_id": 1, "source": "system", "message": self.system[variant]},
            {"step_id": 2, "source": "user", "message": f"Task {task}: " + self.snippet(300, 1500)},
        ]
        call_index = 0
        for _ in range(self.rng.randint(*n_steps)):
            step, call_index = self.step(len(steps) + 1, call_index)
            steps.append(step)
        steps.append({"step_id": len(steps) + 1, "source": "agent", "message": "Done. " + self.snippet(50, 400)})
        data = {
            "schema_version": "ATIF-v1.6",
            "session_id": f"s-{task}-{variant}",
            "agent": {"name": "bench-agent", "version": "1.0", "model_name": "qwen3-coder", "tool_definitions": TOOLS},
            "steps": steps,
            "final_metrics": {"total_prompt_tokens": 100000, "total_completion_tokens": 5000},
        }
        return orjson.dumps(data)


def write_job(root: Path, n: int, seed: int, small: bool = False) -> tuple[Path, int]:
    """A native job of ``n`` trials (2 variants x 5 attempts per task); returns it and its trajectory bytes.

    ``small``: trajectories of a few KB (2-4 steps, short texts), for memory against the number of trials.
    """
    gen = Generator(seed, scale=0.1 if small else 1.0)
    steps = (2, 4) if small else (12, 40)
    job = root / "jobs" / "bench"
    job.mkdir(parents=True)
    (job / "config.yaml").write_text("name: bench\n")
    (job / "results.json").write_text(json.dumps({"job": "bench", "status": "completed",
                                                  "started_at": "2025-11-21T17:00:00Z"}))
    size = 0
    for index in range(n):
        task, rest = divmod(index, 10)
        variant, attempt = ("v1", "v2")[rest // 5], rest % 5 + 1
        reward = 1.0 if gen.rng.random() < 0.4 else 0.0
        name = f"task-{task:05d}__{variant}__{attempt}"
        trial = job / name
        (trial / "agent").mkdir(parents=True)
        (trial / "trial.json").write_text(json.dumps({
            "schema": "trialbook.trial/1", "trial_name": name, "job": "bench", "task": f"task-{task:05d}",
            "variant": variant, "agent": "bench-agent", "model": "qwen3-coder", "attempt": attempt,
            "status": "finished", "outcome": "resolved" if reward else "unresolved", "reward": reward}))
        raw = gen.trajectory(task, variant, steps)
        (trial / "agent" / "trajectory.json").write_bytes(raw)
        size += len(raw)
    return job, size


#: Runs in a fresh process: one conversion, its figures as JSON on stdout.
_CHILD = """
import json, resource, sys, time
from pathlib import Path
from trialbook.sft import ConvertOptions
from trialbook.sft.job import convert_job
from trialbook.sft.tokens import get_tokenizer
job, out, tokenizer, workers, cache = sys.argv[1:6]
if tokenizer != "none":
    get_tokenizer(tokenizer)  # loading the rank file is start-up, not conversion
def cpu():
    return sum(getattr(resource.getrusage(w), f) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))
t, c = time.perf_counter(), cpu()
[r] = convert_job(Path(job), out=Path(out), options=ConvertOptions(tokenizer=tokenizer), overwrite=True,
                  workers=int(workers), token_cache=Path(cache) if cache else None)
wall, c = time.perf_counter() - t, cpu() - c
print(json.dumps({"wall_s": wall, "cpu_s": c, "kept": r.kept, "tokens": r.stats["tokens"]["total"]}))
"""


def run_one(job: Path, out: Path, tokenizer: str, workers: int, cache: Path | None) -> dict[str, Any]:
    """One conversion in a fresh process: wall and CPU seconds of the conversion (its workers
    included, the interpreter's start-up and imports not)."""
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(job), str(out), tokenizer, str(workers),
                           str(cache or "")], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.splitlines()[0])


def _rss_alone(job: Path, out: Path, tokenizer: str, workers: int) -> float:
    """Peak RSS of one conversion measured on its own (ru_maxrss of children is a running maximum)."""
    code = _CHILD + "\nimport resource as r; print(r.getrusage(r.RUSAGE_SELF).ru_maxrss / 1024, " \
                    "r.getrusage(r.RUSAGE_CHILDREN).ru_maxrss / 1024)"
    proc = subprocess.run([sys.executable, "-c", code, str(job), str(out), tokenizer, str(workers), ""],
                          capture_output=True, text=True, check=True)
    own, children = map(float, proc.stdout.splitlines()[-1].split())
    return max(own, children)


def _trial_count_run(root: Path, n: int, seed: int, workers: int) -> list[dict[str, Any]]:
    """Peak RSS (and rate) of converting a job of ``n`` small trajectories without exact tokenization:
    what grows with the number of trials rather than with the bytes."""
    t = time.perf_counter()
    job, size = write_job(root, n, seed, small=True)
    mb = size / 1e6
    print(f"{n} small trajectories, {mb:.1f} MB ({size / n / 1e3:.1f} KB each), written in "
          f"{time.perf_counter() - t:.1f}s", flush=True)
    rows = []
    for w in sorted({1, workers}):
        f = run_one(job, root / "out", "none", w, None)
        rss = _rss_alone(job, root / "rss", "none", w)
        row = {"n": n, "mb": round(mb, 1), "mode": f"trials none x{w}", "wall_s": round(f["wall_s"], 2),
               "cpu_s": round(f["cpu_s"], 2), "mb_per_cpu_s": round(mb / f["cpu_s"], 1),
               "mb_per_wall_s": round(mb / f["wall_s"], 1), "peak_rss_mb": round(rss), "kept": f["kept"],
               "tokens": f["tokens"]}
        rows.append(row)
        print(f"  {'none x' + str(w):32} {row['wall_s']:7.2f}s wall {row['cpu_s']:7.2f}s CPU  "
              f"{row['mb_per_cpu_s']:6.1f} MB/CPU-s  peak RSS {row['peak_rss_mb']} MB", flush=True)
    shutil.rmtree(root)
    return rows


def main() -> None:
    """Generate each size, convert it in every mode, and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,4000",
                        help="numbers of trajectories (~60 KB each), comma-separated ('' to skip)")
    parser.add_argument("--trials", default="5000,40000",
                        help="numbers of small trajectories (a few KB each) for peak RSS against the number of "
                             "trials, comma-separated ('' to skip)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes of the parallel runs")
    parser.add_argument("--tokenizer", default="o200k_base")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", type=Path, default=None, help="where to generate (default: a temp dir)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    results: list[dict[str, Any]] = []
    base = Path(tempfile.mkdtemp(prefix="tb-sft-bench-", dir=args.dir))
    try:
        for n in (int(x) for x in args.sizes.split(",") if x):
            t = time.perf_counter()
            job, size = write_job(base / f"n{n}", n, args.seed)
            mb = size / 1e6
            print(f"{n} trajectories, {mb:.1f} MB ({size / n / 1e3:.1f} KB each), written in "
                  f"{time.perf_counter() - t:.1f}s", flush=True)
            cache = base / f"n{n}" / "token-counts.sqlite"
            modes = [("none", 1, None), ("none", args.workers, None), (args.tokenizer, 1, None),
                     (args.tokenizer, args.workers, None), (args.tokenizer, 1, cache), (args.tokenizer, 1, cache)]
            for i, (tokenizer, workers, store) in enumerate(modes):
                label = f"{tokenizer:>11} x{workers}" + (" cache " + ("cold" if i == 4 else "warm") if store else "")
                f = run_one(job, base / f"n{n}" / "out", tokenizer, workers, store)
                f["peak_rss_mb"] = _rss_alone(job, base / f"n{n}" / "rss", tokenizer, workers) if i < 4 else None
                row = {"n": n, "mb": round(mb, 1), "mode": label.strip(), "wall_s": round(f["wall_s"], 2),
                       "cpu_s": round(f["cpu_s"], 2), "mb_per_cpu_s": round(mb / f["cpu_s"], 1),
                       "mb_per_wall_s": round(mb / f["wall_s"], 1), "peak_rss_mb": f["peak_rss_mb"] and round(f["peak_rss_mb"]),
                       "kept": f["kept"], "tokens": f["tokens"]}
                results.append(row)
                rss = f"peak RSS {row['peak_rss_mb']} MB" if row["peak_rss_mb"] else ""
                print(f"  {label:32} {row['wall_s']:7.2f}s wall {row['cpu_s']:7.2f}s CPU  "
                      f"{row['mb_per_cpu_s']:6.1f} MB/CPU-s {row['mb_per_wall_s']:6.1f} MB/s  {rss}", flush=True)
            shutil.rmtree(base / f"n{n}")
        for n in (int(x) for x in args.trials.split(",") if x):
            results.extend(_trial_count_run(base / f"t{n}", n, args.seed, args.workers))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
    print("targets: >= 50 MB per CPU-second without exact tokenization; peak RSS < 300 MB at every size "
          "and number of trials")


if __name__ == "__main__":
    main()
