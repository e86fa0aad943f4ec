"""Compare two runs of the same job (e.g. the local and the ray backend) byte for byte, after
removing what legitimately differs between runs: timestamps, durations and the job's own path.

Used by tests/test_ray_backend.py and benchmarks/ray_backend.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

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
