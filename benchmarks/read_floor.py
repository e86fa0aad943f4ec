"""The read floor of a cold reindex: what listing and parsing an ``index_bench.py`` tree costs with
nothing else (no checks, no records, no database), to compare the reindex figures against.

Per native trial: open + fstat + read + orjson of ``trial.json``. Per Harbor trial: list the
trial, ``agent/`` and ``verifier/``, stat every entry, parse ``result.json`` and ``config.json``,
read ``reward.txt``, and (first figure) parse ``agent/trajectory.json``, which the index needs
for turn and tool-call counts Harbor's result.json does not record. One process, best of 3.

Usage: python benchmarks/index_bench.py --n 10000 --dir D --keep; python benchmarks/read_floor.py TREE
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import orjson


def _read(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        return os.read(fd, os.fstat(fd).st_size + 1)
    finally:
        os.close(fd)


def native(base: str) -> int:
    """Trials of the native jobs read at the floor; returns how many."""
    n = 0
    for job in os.scandir(f"{base}/block/artifacts/jobs"):
        for trial in os.scandir(job.path):
            if trial.is_dir():
                orjson.loads(_read(f"{trial.path}/trial.json"))
                n += 1
    return n


def harbor(base: str, trajectory: bool = True) -> int:
    """Trials of the Harbor jobs read at the floor; returns how many."""
    n = 0
    for job in os.scandir(f"{base}/harbor/jobs"):
        for trial in os.scandir(job.path):
            if not trial.is_dir():
                continue
            p = trial.path
            for d in (p, f"{p}/agent", f"{p}/verifier"):
                for e in os.scandir(d):
                    e.stat(follow_symlinks=False)
            orjson.loads(_read(f"{p}/result.json"))
            orjson.loads(_read(f"{p}/config.json"))
            if os.path.exists(f"{p}/verifier/reward.txt"):
                _read(f"{p}/verifier/reward.txt")
            if trajectory:
                orjson.loads(_read(f"{p}/agent/trajectory.json"))
            n += 1
    return n


def _rate(fn: Callable[[], int]) -> float:
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        n = fn()
        best = min(best, time.perf_counter() - t)
    return n / best


def main() -> None:
    """Print the floors in trials per second."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tree", help="a tree kept by index_bench.py --keep")
    base = ap.parse_args().tree
    print(f"native floor                         {_rate(lambda: native(base)):>9,.0f} trials/s")
    print(f"Harbor floor, trajectory parsed      {_rate(lambda: harbor(base)):>9,.0f} trials/s")
    print(f"Harbor floor, trajectory not parsed  {_rate(lambda: harbor(base, False)):>9,.0f} trials/s")


if __name__ == "__main__":
    main()
