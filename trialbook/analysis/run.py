"""Job analysis end to end: read a job of any layout, load gold data, extract features, classify
failures, and write the ``analysis/`` tree of spec 000.

::

    <job>/analysis/                          (native jobs; other layouts: see default_out)
      report_failed.json                     reports.build_failed
      report_resolved.json                   reports.build_resolved
      report_task_analysis.json              reports.build_task_analysis
      traj_analysis/score_comparison.json    comparison.build_score_comparison
      instance_analysis/summary.json         comparison.build_instance_summary
      instance_analysis/correlations.json    comparison.build_correlations
      instances.jsonl                        one line per trial (features.TrialFeatures)
      analysis_config.yaml                   thresholds, rules, gold table and hashes, inputs

Deterministic: the same job and gold give byte-identical files. Keys are sorted, lists follow
the job's stable trial order, floats are rounded to :data:`FLOAT_DIGITS` significant digits,
and no file holds the current time (``analysis_config.yaml`` records the job's own times).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trialbook import __version__
from trialbook.analysis import comparison, reports
from trialbook.analysis.failures import RULESET_VERSION, classify_all, ruleset_table
from trialbook.analysis.features import (
    ERROR_PATTERN,
    TEST_RUN_PATTERN,
    TrialFeatures,
    extract_features,
    trial_ids,
)
from trialbook.analysis.gold import ALIASES, Gold, load_gold
from trialbook.errors import SourceError
from trialbook.jsonio import atomic_write_bytes, atomic_write_text, dumps
from trialbook.layout.paths import JobPaths
from trialbook.sources.base import JobView
from trialbook.sources.registry import open_source

CONFIG_SCHEMA = "trialbook.analysis_config/1"
FLOAT_DIGITS = 6
CONFIG_FILE = "analysis_config.yaml"
#: Every file an analysis writes, relative to its directory (analysis_config.yaml last).
OUTPUT_FILES: tuple[str, ...] = (
    "report_failed.json", "report_resolved.json", "report_task_analysis.json",
    "traj_analysis/score_comparison.json", "instance_analysis/summary.json",
    "instance_analysis/correlations.json", "instances.jsonl", CONFIG_FILE,
)
#: Where analyses of non-native jobs go by default (under the current directory).
FOREIGN_OUT_ROOT = Path("trialbook-analysis")


@dataclass
class AnalysisResult:
    """Where an analysis was written and its headline numbers (what the CLI prints)."""

    path: Path
    job: str
    layout: str
    n_trials: int
    n_counted: int
    n_resolved: int
    n_failed: int
    primary: dict[str, int] = field(default_factory=dict)
    tiers: dict[str, int] = field(default_factory=dict)
    gold: dict[str, Any] = field(default_factory=dict)
    #: Tasks the oracle failed or nop passed (see :mod:`trialbook.model.baselines`).
    baseline_findings: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"analysis_dir": str(self.path), "job": self.job, "layout": self.layout,
                "n_trials": self.n_trials, "n_counted": self.n_counted, "n_resolved": self.n_resolved,
                "n_failed": self.n_failed, "primary": self.primary, "tiers": self.tiers, "gold": self.gold,
                "baseline_findings": self.baseline_findings, "files": list(OUTPUT_FILES)}


def clean(value: Any) -> Any:
    """JSON-ready data with floats rounded to FLOAT_DIGITS significant digits and NaN/inf as None."""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return None
        return float(f"{value:.{FLOAT_DIGITS}g}")
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def analysis_location(job_dir: str | Path) -> Path | None:
    """The ``analysis/`` directory of a job when an analysis has been written there, else None."""
    paths = JobPaths(Path(job_dir))
    return paths.analysis if paths.analysis_config.is_file() else None


def open_job(job: JobView | str | Path, layout: str | None = None) -> JobView:
    """The one job at a path of any layout (a tree holding several jobs is an error listing them)."""
    if isinstance(job, JobView):
        return job
    jobs = open_source(Path(job), layout)
    if len(jobs) != 1:
        names = ", ".join(f"{j.name} ({j.path})" for j in jobs[:10]) or "none"
        raise SourceError(f"expected one job here, found {len(jobs)}: {names}; point at one job", job)
    return jobs[0]


def default_out(job: JobView) -> Path:
    """``<job>/analysis`` for native jobs; ``./trialbook-analysis/<layout>__<job>`` for other layouts,
    whose readers would take a new directory inside their tree for a trial or a job."""
    if job.trialbook_job:
        return JobPaths(job.path).analysis
    return (FOREIGN_OUT_ROOT / f"{job.layout}__{job.name}").resolve()


def _trials_sha256(job: JobView) -> str:
    return hashlib.sha256(dumps([t.record.to_json_dict() for t in job.trials], indent=False)).hexdigest()


def _config_doc(job: JobView, gold: Gold, coverage: dict[str, Any], hashes: dict[str, str]) -> dict[str, Any]:
    return {
        "schema": CONFIG_SCHEMA,
        "trialbook_version": __version__,
        "ruleset_version": RULESET_VERSION,
        "reproduce": f"trialbook analyze-job {job.path} --layout {job.layout} --gold <this file>",
        "input": {"job": job.name, "path": str(job.path), "layout": job.layout, "status": job.status,
                  "started_at": job.started_at, "finished_at": job.finished_at, "n_trials": len(job.trials),
                  "trials_sha256": _trials_sha256(job)},
        "thresholds": {"tiers": dict(reports.TIERS), "mostly_min": reports.MOSTLY_MIN,
                       "turn_bucket_edges": list(reports.TURN_EDGES),
                       "token_bucket_edges": list(reports.TOKEN_EDGES),
                       "float_significant_digits": FLOAT_DIGITS},
        "heuristics": {"test_run_pattern": TEST_RUN_PATTERN.pattern, "error_pattern": ERROR_PATTERN.pattern,
                       "exit_code_keys": ["exit_code", "returncode"]},
        "populations": {"reports": "counted trials: an outcome other than cancelled",
                        "comparison": comparison.POPULATION},
        "axes": list(reports.AXES),
        "rules": ruleset_table(),
        "gold": {"sources": [s.to_json() for s in gold.sources], "table_sha256": gold.table_sha256(),
                 "aliases": {k: list(v) for k, v in ALIASES.items()}, "coverage": coverage,
                 "tasks": gold.tasks},
        "outputs_sha256": hashes,
    }


def _write_json(out: Path, rel: str, data: Any, hashes: dict[str, str]) -> None:
    raw = dumps(clean(data)) + b"\n"
    atomic_write_bytes(out / rel, raw)
    hashes[rel] = hashlib.sha256(raw).hexdigest()


def build_features(job: JobView, gold_file: str | Path | None = None) -> tuple[list[TrialFeatures], Gold]:
    """Features of every trial of ``job`` (gold, tier and failure category filled in), and the gold."""
    gold = load_gold(job, gold_file)
    features = [extract_features(view, tid) for view, tid in zip(job.trials, trial_ids(job.trials), strict=True)]
    rates = reports.tier_rates(features)
    for f in features:
        f.gold = dict(gold.fields_for(f.task))
        f.tier = reports.tier_of(rates.get(f.task))
    classify_all(features)
    return features, gold


def run_analysis(job: JobView | str | Path, gold: str | Path | None = None, out: str | Path | None = None,
                 layout: str | None = None) -> AnalysisResult:
    """Analyse one job and write every output file; returns where and the headline numbers."""
    view = open_job(job, layout)
    features, gold_data = build_features(view, gold)
    out_dir = Path(out) if out is not None else default_out(view)
    out_dir.mkdir(parents=True, exist_ok=True)
    coverage = gold_data.coverage({f.task for f in features})
    hashes: dict[str, str] = {}
    failed = reports.build_failed(features, view.name)
    _write_json(out_dir, "report_failed.json", failed, hashes)
    _write_json(out_dir, "report_resolved.json", reports.build_resolved(features, view.name), hashes)
    task_report = reports.build_task_analysis(features, view.name, gold_data.tasks, gold_data.explicit, coverage)
    _write_json(out_dir, "report_task_analysis.json", task_report, hashes)
    _write_json(out_dir, "traj_analysis/score_comparison.json",
                comparison.build_score_comparison(features, view.name), hashes)
    _write_json(out_dir, "instance_analysis/summary.json", comparison.build_instance_summary(features, view.name),
                hashes)
    _write_json(out_dir, "instance_analysis/correlations.json", comparison.build_correlations(features, view.name),
                hashes)
    lines = b"".join(dumps(clean(f.to_json()), indent=False) + b"\n" for f in features)
    atomic_write_bytes(out_dir / "instances.jsonl", lines)
    hashes["instances.jsonl"] = hashlib.sha256(lines).hexdigest()
    doc = clean(_config_doc(view, gold_data, coverage, hashes))
    atomic_write_text(out_dir / CONFIG_FILE, yaml.safe_dump(doc, sort_keys=True, allow_unicode=True, width=100))
    return AnalysisResult(
        path=out_dir, job=view.name, layout=view.layout, n_trials=len(features),
        n_counted=failed["n_counted"], n_resolved=failed["n_counted"] - failed["n_failed"],
        n_failed=failed["n_failed"], primary={k: v["count"] for k, v in failed["primary"].items()},
        tiers=task_report["tiers"]["counts"], gold=coverage, baseline_findings=task_report["baseline_findings"],
    )


def analyze_job(job: JobView | str | Path, gold: str | Path | None = None, out: str | Path | None = None,
                layout: str | None = None) -> Path:
    """Analyse one job (a JobView or a path in any layout); returns the analysis directory."""
    return run_analysis(job, gold, out, layout).path


__all__ = ["AnalysisResult", "analysis_location", "analyze_job", "open_job", "run_analysis"]
