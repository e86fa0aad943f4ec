"""What two runs of one job must agree on, whatever environment ran them: a job tree reduced to
its results, without timestamps, durations or what only one environment records.

``comparable(job_dir)`` keeps ``results.json`` (or a trajgen job's ``result.json``) minus its
timestamps, and per trial (keyed by task, variant, attempt) the outcome, rewards, reason and
exception type from ``trial.json``. Two environments that grade alike give equal values;
``differences(a, b)`` lists where they do not, one line each, for a readable assertion.
"""

from __future__ import annotations

import json
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
