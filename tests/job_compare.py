"""What two runs of one job must agree on, in two strengths.

* Across environments (local, podman, docker: tests/test_demo_engines.py): ``comparable(job_dir)``
  keeps ``results.json`` (or a trajgen job's ``result.json``) minus its timestamps, and per trial
  (keyed by task, variant, attempt) the outcome, rewards, reason and exception type from
  ``trial.json``; ``differences(a, b)`` lists where two such values differ, one line each.
* Across backends (local and ray: tests/test_ray_backend.py, benchmarks/ray_backend.py):
  ``job_differences(job_a, job_b)`` compares the job files byte for byte after removing only
  timestamps, durations and the job's own path.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

#: results.json fields that say when, not what.
RESULT_VOLATILE = {"started_at", "finished_at"}
#: trial.json fields kept: the verdict and its identity (timings and ``extra`` are the environment's).
TRIAL_KEPT = ("task", "variant", "attempt", "trial_name", "status", "outcome", "reward", "rewards", "reason", "retries")


def comparable(job_dir: Path) -> dict[str, Any]:
    """``{"results": ..., "trials": {"task/variant/attempt": {...}}}`` of one job directory."""
    results_file = job_dir / "results.json"
    if not results_file.is_file():
        results_file = job_dir / "result.json"
    results = {k: v for k, v in json.loads(results_file.read_text()).items() if k not in RESULT_VOLATILE}
    trials: dict[str, dict[str, Any]] = {}
    for path in sorted(job_dir.glob("*/trial.json")):
        raw = json.loads(path.read_text())
        kept = {k: raw.get(k) for k in TRIAL_KEPT}
        kept["exception"] = (raw.get("exception") or {}).get("type")
        trials[f"{raw['task']}/{raw['variant']}/{raw['attempt']}"] = kept
    return {"results": results, "trials": trials}


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Every place where ``a`` and ``b`` differ: ``path: a-value != b-value``, one per line."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in a or key not in b:
                out.append(f"{sub}: only in {'the second' if key not in a else 'the first'}")
            else:
                out += differences(a[key], b[key], sub)
        return out
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


#: The job files whose bytes must not depend on where or how fast the trials ran.
COMPARED = ("results.json", "summary.json", "summary.md")
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z?")


def _volatile(key: str) -> bool:
    """Timestamps (``started_at``, ``generated_at``...) and durations (``duration_s``, ``mean_duration_s``)."""
    return key.endswith("_at") or "duration" in key


def _strip(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if not _volatile(str(k))}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def normalized_bytes(path: Path, job_dir: Path) -> bytes:
    """The file's bytes with the job directory's path, timestamps and durations taken out (JSON is
    re-dumped with its keys in the file's order, so any other difference still shows)."""
    text = path.read_text(encoding="utf-8").replace(str(job_dir), "<job_dir>")
    if path.suffix == ".json":
        return (json.dumps(_strip(json.loads(text)), indent=2, ensure_ascii=False) + "\n").encode()
    lines = [_ISO_TIME.sub("<time>", line) for line in text.splitlines() if "duration" not in line.lower()]
    return ("\n".join(lines) + "\n").encode()


def job_differences(job_a: Path, job_b: Path, names: tuple[str, ...] = COMPARED) -> list[str]:
    """The compared files that differ between two job directories (empty: identical), each with its
    first differing line."""
    out = []
    for name in names:
        a, b = normalized_bytes(job_a / name, job_a), normalized_bytes(job_b / name, job_b)
        if a != b:
            first = next((f"{x!r} != {y!r}" for x, y in zip(a.decode().splitlines(), b.decode().splitlines(),
                                                              strict=False) if x != y), "lengths differ")
            out.append(f"{name}: {first}")
    return out
