"""The store's state in the block's live status (``trialbook status``): what is uploaded, what failed.

Kept under the status key ``store``: the URL, the job, how many of its trials are in the
store, and each unit whose upload failed with its error (cleared when a later push succeeds).
A failed upload is recorded, never raised: the trial stays on disk and ``trialbook push``
(or the next run of the job) completes it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from trialbook.block.status import read_status, update_status
from trialbook.model.trial import utc_now
from trialbook.store.upload import UnitResult

_lock = threading.Lock()


def record_units(config_path: Path, store: str, job: str, units: list[UnitResult], *,
                 trials_total: int | None = None) -> dict[str, Any]:
    """Merge the results of ``units`` into the status' ``store`` section; returns the new section."""
    with _lock:
        current = read_status(config_path).get("store")
        section: dict[str, Any] = dict(current) if isinstance(current, dict) else {}
        if section.get("url") != store or section.get("job") != job:
            section = {"url": store, "job": job, "trials_in_store": [], "failed": {}}
        in_store = set(section.get("trials_in_store") or [])
        failed = dict(section.get("failed") or {})
        for unit in units:
            if unit.state == "failed":
                failed[unit.unit] = unit.error or "failed"
                if unit.unit.startswith("trial:"):
                    in_store.discard(unit.unit.removeprefix("trial:"))
            else:
                failed.pop(unit.unit, None)
                if unit.unit.startswith("trial:"):
                    in_store.add(unit.unit.removeprefix("trial:"))
        section.update({"trials_in_store": sorted(in_store), "failed": failed, "updated_at": utc_now()})
        if trials_total is not None:
            section["trials_finished"] = trials_total
        update_status(config_path, {"store": section}, snapshot=False)
        return section


def summary_line(section: dict[str, Any]) -> str:
    """One line for people: ``12 trials in s3://b/p, 1 upload failed (trial:x: ...)``."""
    n = len(section.get("trials_in_store") or [])
    failed = section.get("failed") or {}
    line = f"{n} trial(s) of job {section.get('job')} in {section.get('url')}"
    if failed:
        first = next(iter(failed.items()))
        line += f"; {len(failed)} upload(s) failed, e.g. {first[0]}: {first[1]} (retried by `trialbook push`)"
    return line
