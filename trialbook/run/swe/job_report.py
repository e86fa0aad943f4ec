"""The job-level side of SWE-style grading: the job's ``report.json`` and the SWE-bench figures in results.json.

Spec 002's aggregate ``report.json`` is keyed by instance id for one model run, so a job
of several variants or attempts has one report per (variant, attempt):
``reports/<variant>/attempt_<n>/report.json``. The job's own ``report.json`` is always
the first variant's attempt 1, which for the usual one-variant one-attempt job is the
whole job (and then ``reports/`` is not written).

The job aggregate (``results.json``) gets ``benchmark_type`` (detected from the dataset
name as spec 002's shell function does), ``dataset_name``, and under ``swebench`` the
figures swebench's ``make_run_report`` computes, per variant and attempt:
``{"swebench": {"<variant>": {"1": {total_instances, submitted_instances, ..., "report": "report.json"}}}}``.
There, *submitted* means the instance's trial finished (cancelled ones are not), *error*
counts trials with an error outcome (agent_error, timeout, verifier_error, infra_error;
these have no report unless the patch was graded), and *empty patch* those whose report
says ``patch_exists: false``. Both files are refreshed with every aggregate write, so
they stay current while the job runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from trialbook.config import BlockConfig
from trialbook.errors import TrialbookError
from trialbook.grading import detect_benchmark_type, swebench_summary
from trialbook.jsonio import dumps, read_json
from trialbook.layout.paths import JobPaths
from trialbook.model.outcome import ERROR_OUTCOMES, Outcome
from trialbook.model.trial import TrialRecord
from trialbook.run.swe.task import SweTask, write_report
from trialbook.run.tasks import Task

AggregateExtra = Callable[[list[TrialRecord]], dict[str, Any]]


class SweJobReporter:
    """Writes a SWE-style job's report.json files and returns its results.json figures (called per aggregate)."""

    def __init__(self, job: JobPaths, instance_ids: Sequence[str], variants: Sequence[str],
                 attempts: int, dataset_name: str) -> None:
        self.job = job
        self.instance_ids = list(instance_ids)
        self.runs = [(v, a) for v in variants for a in range(1, attempts + 1)]
        self.dataset_name = dataset_name
        self._reports: dict[tuple[str, str | None], dict[str, Any] | None] = {}
        self._written: dict[Path, bytes] = {}

    def _report_of(self, rec: TrialRecord) -> dict[str, Any] | None:
        """The trial's report.json (cached per finished trial); None when it wrote none."""
        key = (rec.trial_name, rec.finished_at)
        if key not in self._reports:
            path = self.job.trial(rec.trial_name).swe_report
            try:
                data = read_json(path) if path.exists() else None
            except TrialbookError:
                data = None
            self._reports[key] = data if isinstance(data, dict) and rec.task in data else None
        return self._reports[key]

    def _write(self, path: Path, report: dict[str, Any]) -> None:
        """Write a report only when its content changed since the last write."""
        data = dumps(report, sort_keys=False)
        if self._written.get(path) != data or not path.exists():
            write_report(path, report)
            self._written[path] = data

    def __call__(self, records: list[TrialRecord]) -> dict[str, Any]:
        """Refresh the report files from ``records`` and return the aggregate's extra keys."""
        figures: dict[str, dict[str, Any]] = {}
        several = len(self.runs) > 1
        for variant, attempt in self.runs:
            recs = [r for r in records if r.variant == variant and r.attempt == attempt
                    and r.outcome is not None and r.outcome != Outcome.CANCELLED]
            reports = {r.task: rep for r in recs if (rep := self._report_of(r)) is not None}
            merged = {i: reports[i][i] for i in self.instance_ids if i in reports}
            empty = [i for i, e in merged.items() if not e.get("patch_exists") and not e.get("patch_is_None")]
            summary = swebench_summary(
                merged, submitted_ids=[r.task for r in recs],
                error_ids=[r.task for r in recs if r.outcome in ERROR_OUTCOMES],
                empty_patch_ids=empty, all_ids=self.instance_ids)
            if (variant, attempt) == self.runs[0]:
                self._write(self.job.swe_report, merged)
            if several:
                self._write(self.job.swe_run_report(variant, attempt), merged)
            rel = self.job.swe_run_report(variant, attempt) if several else self.job.swe_report
            summary["report"] = str(rel.relative_to(self.job.dir))
            figures.setdefault(variant, {})[str(attempt)] = summary
        return {"benchmark_type": detect_benchmark_type(self.dataset_name),
                "dataset_name": self.dataset_name, "swebench": figures}


def swe_aggregate_extra(tasks: Sequence[Task], config: BlockConfig, job: JobPaths) -> AggregateExtra | None:
    """A :class:`SweJobReporter` for a job of SWE-style tasks, None for any other job."""
    swe = [t for t in tasks if isinstance(t, SweTask)]
    if not swe:
        return None
    dataset = str(swe[0].metadata.get("dataset_name") or "")
    return SweJobReporter(job, [t.name for t in swe], [v.name for v in config.variants],
                          config.attempts, dataset)
