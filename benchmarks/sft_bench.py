"""Benchmark SFT conversion on synthetic agent trajectories (default 10,000, tens of KB each).

The input is realistic in shape: a shared system prompt and tool list per variant, a task
instruction per task, then 12-40 agent steps with reasoning, shell/edit tool calls (some
parallel) and outputs cut from real source files (the Python standard library), so tokens
per byte are those of code and logs. The timed pipeline is everything after the bytes are
in memory: JSON parsing, ATIF validation, conversion, token counting and writing.

Usage: python benchmarks/sft_bench.py [--n 10000] [--threads 1] [--tokenizer o200k_base] [--out DIR]
"""

from __future__ import annotations

import argparse
import random
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from trialbook.model.trajectory import parse_trajectory
from trialbook.sft import ConvertOptions, SftInput, convert

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

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.corpus = _corpus()
        self.system = {
            variant: f"You are agent {variant}, an expert software engineer.\n" + self.snippet(2500, 4000)
            for variant in ("v1", "v2")
        }

    def snippet(self, low: int, high: int) -> str:
        text = self.rng.choice(self.corpus)
        size = self.rng.randint(low, high)
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

    def trajectory(self, task: int, variant: str) -> bytes:
        steps: list[dict[str, Any]] = [
            {"step_id": 1, "source": "system", "message": self.system[variant]},
            {"step_id": 2, "source": "user", "message": f"Task {task}: " + self.snippet(300, 1500)},
        ]
        call_index = 0
        for _ in range(self.rng.randint(12, 40)):
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


def generate(n: int, seed: int) -> list[tuple[str, str, int, float, bytes]]:
    """``n`` trajectories as (task, variant, attempt, score, JSON bytes): 2 variants x 5 attempts per task."""
    gen = Generator(seed)
    out = []
    for index in range(n):
        task, rest = divmod(index, 10)
        variant, attempt = ("v1", "v2")[rest // 5], rest % 5 + 1
        score = 1.0 if gen.rng.random() < 0.4 else 0.0
        out.append((f"task-{task:05d}", variant, attempt, score, gen.trajectory(task, variant)))
    return out


def inputs(items: list[tuple[str, str, int, float, bytes]]) -> Iterator[SftInput]:
    """Parse and validate each trajectory lazily, as a job reader would."""
    for task, variant, attempt, score, raw in items:
        trial = f"{task}__{variant}__{attempt}"
        yield SftInput(
            id=trial,
            job="bench",
            task=task,
            variant=variant,
            attempt=attempt,
            score=score,
            resolved=score == 1.0,
            layout="native",
            trial_path=f"artifacts/jobs/bench/{trial}",
            trajectory=parse_trajectory(orjson.loads(raw)),
        )


def main() -> None:
    """Generate, convert, and print throughput."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="number of trajectories")
    parser.add_argument("--threads", type=int, default=1, help="token-counting threads")
    parser.add_argument("--tokenizer", default="o200k_base")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="output directory (default: a temp dir)")
    args = parser.parse_args()

    started = time.perf_counter()
    items = generate(args.n, args.seed)
    size = sum(len(item[4]) for item in items)
    print(f"generated {args.n} trajectories, {size / 1e6:.1f} MB, {size / args.n / 1e3:.1f} KB each "
          f"({time.perf_counter() - started:.1f}s)")

    started = time.process_time()
    for _ in inputs(items):
        pass
    parse_s = time.process_time() - started
    print(f"parse + validate only: {parse_s:.2f}s CPU, {size / 1e6 / parse_s:.1f} MB/s")

    options = ConvertOptions(tokenizer=args.tokenizer, token_threads=args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "sft"
        convert([], Path(tmp) / "warmup", options)  # load the tokenizer outside the timing
        started, cpu_started = time.perf_counter(), time.process_time()
        result = convert(inputs(items), out, options, dataset_name="bench")
        total_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
        written = sum(p.stat().st_size for p in (result.im_path, result.lf_path, result.stats_path))
    print(f"kept {result.kept}/{result.trajectories_in}, dropped {dict((k, v) for k, v in result.dropped.items() if v)}")
    print(f"tokens: total {result.stats['tokens']['total']}, mean {result.stats['tokens']['mean']} ({args.tokenizer})")
    print(f"wrote {written / 1e6:.1f} MB")
    print(f"full pipeline: {total_s:.2f}s wall, {args.n / total_s:.0f} trajectories/s, {size / 1e6 / total_s:.1f} MB/s of input "
          f"(token threads: {args.threads})")
    print(f"CPU time: {cpu_s:.2f}s, {size / 1e6 / cpu_s:.1f} MB/s of input per CPU-second (all threads; "
          "the wall figure also reflects other load on the machine)")


if __name__ == "__main__":
    main()
