"""The summary of one big job read from its files by several processes (``show PATH`` without an index).

Reading a job is per-trial work (Harbor trials also parse their trajectories for turn counts), so a
job of thousands of trials is split into consecutive parts read in forked worker processes, the
way a reindex splits it (:mod:`trialbook.index.jobread`). Each worker returns its trials' summary
facts (small dataclasses, cheap to send back); the parent puts them in the job's stable order and
builds the same summary one process would (tested).
"""

from __future__ import annotations

import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from trialbook.index.jobread import (
    PARALLEL_MIN_TRIALS,
    PART_MIN_TRIALS,
    _pool_context,
    default_workers,
)
from trialbook.results.summary import JobInfo, TrialFacts, build_summary, facts_from_record
from trialbook.sources.base import SourceReader
from trialbook.sources.registry import get_reader


def _read_part(layout: str, job_dir: str, part: list[str]) -> tuple[list[TrialFacts], JobInfo, list[str]]:
    """Facts of the trials in ``part`` (siblings read for identity only), the job's identity and
    the warnings reading raised (re-raised by the parent)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        view = get_reader(layout).read_trials(Path(job_dir), [Path(p) for p in part])
    info = JobInfo(job=view.name, job_dir=str(view.path), layout=view.layout,
                   run_id=view.meta.get("run_id") or view.name, experiment=view.meta.get("experiment"),
                   started_at=view.started_at, finished_at=view.finished_at, status=view.status)
    return [facts_from_record(t.record) for t in view.trials], info, [str(w.message) for w in caught]


def can_split(reader: SourceReader) -> bool:
    """Whether ``reader`` lists a path's jobs and reads part of a job without reading it all."""
    kind = type(reader)
    return kind.read_trials is not SourceReader.read_trials and kind.job_dirs is not SourceReader.job_dirs


def summarize_in_parts(reader: SourceReader, job_dir: Path, workers: int | None = None,
                       min_trials: int = PARALLEL_MIN_TRIALS, part_min: int = PART_MIN_TRIALS) -> dict[str, Any] | None:
    """The summary of the job at ``job_dir`` read by ``workers`` processes (None: one per CPU) in
    parts of at least ``part_min`` trials, or None when that is not worth it (fewer than
    ``min_trials`` trials, one worker, or a reader that cannot read part of a job), in which case
    the caller reads the job in one process."""
    if not can_split(reader):
        return None
    workers = default_workers() if workers is None else workers
    if workers < 2:
        return None
    trials = [str(p) for p in reader.trial_dirs(job_dir)]
    parts = min(workers, len(trials) // max(1, part_min))
    if len(trials) < min_trials or parts < 2:
        return None
    step = -(-len(trials) // parts)
    chunks = [trials[i:i + step] for i in range(0, len(trials), step)]
    with ProcessPoolExecutor(max_workers=len(chunks), mp_context=_pool_context()) as pool:
        results = list(pool.map(_read_part, [reader.name] * len(chunks), [str(job_dir)] * len(chunks), chunks))
    facts = [f for part_facts, _, _ in results for f in part_facts]
    facts.sort(key=lambda f: (f.task, f.variant, f.attempt, f.trial_name))  # JobView's order
    for message in dict.fromkeys(m for _, _, messages in results for m in messages):
        warnings.warn(message, stacklevel=2)
    return build_summary(results[0][1], facts)
