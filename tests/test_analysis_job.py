"""Whole-job analysis: tiers and statistics against hand values and scipy, byte-identical reruns,
the post-run step on a real demo job, the CLI, and jobs of every layout."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from analysis_jobs import BUSY, Usage, make_block, make_job
from conftest import make_block as make_example_block
from conftest import requires_bwrap

from trialbook.analysis import analysis_location, analyze_job
from trialbook.analysis.run import OUTPUT_FILES, run_analysis
from trialbook.errors import SourceError

FIXTURES = Path(__file__).parent / "fixtures"
#: task -> variant -> outcomes by attempt (R resolved, U unresolved)
PLAN = {"A": {"v1": "RR", "v2": "RR"}, "B": {"v1": "RR", "v2": "RU"}, "C": {"v1": "RU", "v2": "UU"},
        "D": {"v1": "UU", "v2": "UU"}, "E": {"v1": "RR", "v2": "UU"}}
RESOLVED_TURNS = [1, 4, 5, 9, 10, 19, 20, 49, 50, 100]
UNRESOLVED_TURNS = [30, 40, 50, 60, 70, 80, 90, 100, 110, None]
RESOLVED_TOKENS = [9_999, 10_000] + [None] * 8


def _specs() -> list[dict[str, Any]]:
    specs = []
    rt, ut, tok = iter(RESOLVED_TURNS), iter(UNRESOLVED_TURNS), iter(RESOLVED_TOKENS)
    for task, by_variant in PLAN.items():
        for variant, outcomes in by_variant.items():
            for attempt, o in enumerate(outcomes, start=1):
                ok = o == "R"
                tokens = next(tok) if ok else None
                turns = next(rt) if ok else next(ut)
                specs.append({"task": task, "variant": variant, "attempt": attempt,
                              "traj": BUSY if turns is not None else None,  # no trajectory: turns unknown
                              "outcome": "resolved" if ok else "unresolved", "n_turns": turns,
                              "usage": Usage(total_tokens=tokens) if tokens is not None else None,
                              "duration_s": 10.0 + len(specs)})
    specs.append({"task": "F", "variant": "v1", "attempt": 1, "outcome": "cancelled"})
    return specs


@pytest.fixture(scope="module")
def tier_job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_job(make_block(tmp_path_factory.mktemp("tiers")), _specs())


def _load(out: Path, rel: str) -> Any:
    return json.loads((out / rel).read_text())


def test_tiers_and_separating_tasks(tier_job: Path) -> None:
    rep = _load(run_analysis(tier_job).path, "report_task_analysis.json")
    rates = {t: e["solve_rate"] for t, e in rep["tasks"].items()}
    assert rates == {"A": 1.0, "B": 0.75, "C": 0.25, "D": 0.0, "E": 0.5, "F": None}
    assert rep["tiers"]["tasks"] == {"always": ["A"], "mostly": ["B", "E"], "sometimes": ["C"], "never": ["D"],
                                     "unknown": ["F"]}
    assert rep["tasks"]["B"]["by_variant"]["v2"] == {"n_trials": 2, "n_resolved": 1, "solve_rate": 0.5,
                                                     "tier": "mostly"}
    assert [s["task"] for s in rep["separating_tasks"]] == ["C", "E"]
    assert rep["separating_tasks"][0]["solved_by"] == ["v1"] and rep["separating_tasks"][0]["never_solved_by"] == ["v2"]
    assert rep["separation_matrix"]["counts"] == {"v1": {"v2": 2}, "v2": {"v1": 0}}
    unknown = rep["breakdowns"]["domain"]["unknown"]
    assert unknown["all"]["n_trials"] == 20 and unknown["all"]["n_resolved"] == 10
    assert unknown["by_variant"]["v2"]["solve_rate"] == 0.3
    assert unknown["all"]["mean_task_solve_rate"] == 0.5  # (1 + .75 + .25 + 0 + .5) / 5


def test_resolved_report_buckets(tier_job: Path) -> None:
    rep = _load(run_analysis(tier_job).path, "report_resolved.json")
    turns = rep["buckets"]["turns"]["overall"]
    assert {k: v["count"] for k, v in turns.items()} == {"0-4": 2, "5-9": 2, "10-19": 2, "20-49": 2, "50-99": 1,
                                                         "100+": 1, "unknown": 0}
    tokens = rep["buckets"]["tokens"]["overall"]
    assert tokens["0-10k"]["count"] == 1 and tokens["10k-50k"]["count"] == 1 and tokens["unknown"]["count"] == 8
    assert rep["by_axis"]["tier"]["mostly"] == {"n_trials": 8, "n_resolved": 5, "resolve_rate": 0.625,
                                                "trial_ids": ["B__v1__1", "B__v1__2", "B__v2__1", "E__v1__1",
                                                              "E__v1__2"]}
    assert rep["excluded"]["trial_ids"] == ["F__v1__1"]


def _sig(x: float) -> float:
    return float(f"{x:.6g}")


def test_score_comparison_and_correlations_match_scipy(tier_job: Path) -> None:
    stats = pytest.importorskip("scipy.stats")
    np = pytest.importorskip("numpy")
    out = run_analysis(tier_job).path
    comp = _load(out, "traj_analysis/score_comparison.json")["overall"]["n_turns"]
    res = RESOLVED_TURNS
    unres = [t for t in UNRESOLVED_TURNS if t is not None]
    assert comp["resolved"] == {"n": 10, "mean": _sig(np.mean(res)), "median": _sig(np.median(res)),
                                "p90": _sig(np.percentile(res, 90))}
    assert comp["unresolved"]["n"] == 9 and comp["unresolved"]["p90"] == _sig(np.percentile(unres, 90))
    ref = stats.mannwhitneyu(res, unres, alternative="two-sided", method="asymptotic")
    mw = comp["mann_whitney"]
    assert mw["u"] == ref.statistic and mw["p_value"] == _sig(ref.pvalue)
    assert mw["effect_size_rank_biserial"] == _sig(2 * ref.statistic / (10 * 9) - 1)
    corr = _load(out, "instance_analysis/correlations.json")["overall"]["n_turns"]
    flags = [1] * 10 + [0] * 9
    sp = stats.spearmanr(flags, res + unres)
    pb = stats.pointbiserialr(flags, res + unres)
    assert corr["spearman"] == {"r": _sig(sp.statistic), "p_value": _sig(sp.pvalue), "n": 19}
    assert corr["point_biserial"] == {"r": _sig(pb.statistic), "p_value": _sig(pb.pvalue), "n": 19}
    by_variant = _load(out, "traj_analysis/score_comparison.json")["by_variant"]
    assert by_variant["v1"]["n_turns"]["resolved"]["n"] == 7 and by_variant["v2"]["n_turns"]["resolved"]["n"] == 3


def test_instance_summary_rows(tier_job: Path) -> None:
    rows = _load(run_analysis(tier_job).path, "instance_analysis/summary.json")["rows"]
    assert [(r["task"], r["variant"]) for r in rows][:3] == [("A", "v1"), ("A", "v2"), ("B", "v1")]
    c2 = next(r for r in rows if (r["task"], r["variant"]) == ("C", "v2"))
    assert (c2["n_trials"], c2["n_resolved"], c2["tier"], c2["task_tier"]) == (2, 0, "never", "sometimes")
    assert c2["failure_categories"] == {"unresolved_other": 2}
    f1 = next(r for r in rows if r["task"] == "F")
    assert (f1["n_trials"], f1["n_listed"], f1["solve_rate"], f1["outcomes"]) == (0, 1, None, {"cancelled": 1})


def _read_all(out: Path) -> dict[str, bytes]:
    return {rel: (out / rel).read_bytes() for rel in OUTPUT_FILES}


def test_rerun_is_byte_identical(tier_job: Path, tmp_path: Path) -> None:
    first = _read_all(analyze_job(tier_job))
    second = _read_all(analyze_job(tier_job))
    elsewhere = _read_all(analyze_job(tier_job, out=tmp_path / "copy"))
    assert first == second == elsewhere
    config = yaml.safe_load(first["analysis_config.yaml"])
    for rel, digest in config["outputs_sha256"].items():
        assert hashlib.sha256(first[rel]).hexdigest() == digest
    assert config["input"]["finished_at"] == "2026-01-01T01:00:00.000Z" and config["ruleset_version"]
    assert len(first["instances.jsonl"].splitlines()) == 21
    assert analysis_location(tier_job) == tier_job / "analysis"


def test_reproduce_from_config_snapshot(tier_job: Path, tmp_path: Path) -> None:
    """An analysis_config.yaml is itself a gold file: the job tree alone reproduces the reports."""
    first = _read_all(analyze_job(tier_job))
    again = _read_all(analyze_job(tier_job, gold=tier_job / "analysis" / "analysis_config.yaml", out=tmp_path / "r"))
    for rel in ("report_failed.json", "report_resolved.json", "traj_analysis/score_comparison.json"):
        assert again[rel] == first[rel]


# ------------------------------------------------------------------------------ real jobs


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap (bwrap) is not installed")
    from trialbook.app.pipeline import run_block
    from trialbook.cli.demo import create_demo_block

    root = create_demo_block(tmp_path_factory.mktemp("demo") / "block")
    return root, run_block(root / "config.yaml", "demo")


def test_demo_job_is_analysed_after_the_run(demo: tuple[Path, Any]) -> None:
    root, report = demo
    job = report.outcome.job_dir
    assert "analysis" not in report.step_errors and report.steps["analysis"]["dir"] == str(job / "analysis")
    out = analysis_location(job)
    assert out is not None and all((out / rel).is_file() for rel in OUTPUT_FILES)
    failed = _load(out, "report_failed.json")
    assert {k: v["count"] for k, v in failed["primary"].items() if v["count"]} == {"no_patch": 15, "verifier_error": 3}
    tasks = _load(out, "report_task_analysis.json")
    # only baselines ran: they check the tasks and are kept out of difficulty tiers...
    assert tasks["tiers"]["counts"] == {"always": 0, "mostly": 0, "sometimes": 0, "never": 0, "unknown": 5}
    # ...and what they found is said plainly: the broken task is broken, not hard
    assert [(b["kind"], b["task"], b["outcomes"]) for b in tasks["baseline_findings"]] == [
        ("oracle_fails", "broken-verifier", {"verifier_error": 3})]
    assert tasks["baseline_findings"][0]["message"] == (
        "oracle fails on broken-verifier (0 of 3 resolved: verifier_error=3): check its tests and solution")
    assert len(tasks["separating_tasks"]) == 4 and tasks["gold"]["missing"] == []
    assert tasks["breakdowns"]["bug_type"]["off-by-one"]["by_variant"]["oracle"]["solve_rate"] == 1.0
    auto = _read_all(out)
    assert _read_all(analyze_job(job)) == auto  # the manual run reproduces the automatic one byte for byte


def test_cli_and_script(demo: tuple[Path, Any]) -> None:
    root, report = demo
    res = subprocess.run([sys.executable, "-m", "trialbook.cli.main", "analyze-job", "--json"], cwd=root,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["analysis_dir"] == str(report.outcome.job_dir / "analysis") and data["n_failed"] == 18
    human = subprocess.run([sys.executable, "-m", "trialbook.cli.main", "analyze-job", "demo"], cwd=root,
                           capture_output=True, text=True)
    assert human.returncode == 0 and "no patch / empty output" in human.stdout
    exe = Path(sys.executable).parent / "trialbook"
    if exe.exists():
        script = subprocess.run(["bash", str(root / "scripts" / "analyze_job.sh"), "demo", "--json"],
                                capture_output=True, text=True, env={**os.environ, "TRIALBOOK": str(exe)})
        assert script.returncode == 0, script.stderr
        assert json.loads(script.stdout)["n_trials"] == 30


@requires_bwrap
def test_analysis_disabled_in_config(tmp_path: Path) -> None:
    from trialbook.app.pipeline import run_block

    root = make_example_block(tmp_path, tasks=["hello-world"], analysis={"enabled": False, "gold": None})
    report = run_block(root / "config.yaml", "j")
    assert report.steps["analysis"] == {"skipped": "analysis.enabled is false"}
    assert analysis_location(report.outcome.job_dir) is None


# ------------------------------------------------------------------------------ other layouts

LAYOUTS = [
    ("harbor/jobs/mixed-agents", "harbor", {"timeout": 2, "verifier_error": 2}),
    ("pier_copilot/jobs/copilot-demo", "pier", {"agent_error": 1}),
    ("legacy/results", "legacy", {"timeout": 1}),
    ("velora/Trajectory_results/SWE-hard", "velora", {"agent_error": 1, "fail_to_pass_failing": 3}),
    ("openhands/outputs", "openhands", {"fail_to_pass_failing": 2}),
    ("swebench", "swebench", {"fail_to_pass_failing": 1, "no_patch": 1, "patch_not_applied": 1}),
    ("miniswe/v1", "miniswe", {"fail_to_pass_failing": 1}),
]
_ERROR_CATEGORY = {"infra_error": "infra_error", "timeout": "timeout", "agent_error": "agent_error"}


@pytest.mark.parametrize("rel, layout, expected", LAYOUTS, ids=[x[1] + ":" + x[0].split("/")[0] for x in LAYOUTS])
def test_every_layout(rel: str, layout: str, expected: dict[str, int], tmp_path: Path,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_analysis(FIXTURES / rel, layout=layout)
    assert result.path.is_relative_to(tmp_path / "trialbook-analysis")
    assert all((result.path / rel_out).is_file() for rel_out in OUTPUT_FILES)
    rows = [json.loads(x) for x in (result.path / "instances.jsonl").read_text().splitlines()]
    assert len(rows) == result.n_trials > 0
    for row in rows:
        if row["counted"] and not row["resolved"]:
            assert row["category"] and row["rule"]
            if row["outcome"] in _ERROR_CATEGORY and row["category"] != "step_cost_limit":
                assert row["category"] == _ERROR_CATEGORY[row["outcome"]]
    got = {k: v for k, v in result.primary.items() if v}
    assert {k: got.get(k, 0) for k in expected} == expected
    assert sum(got.values()) == result.n_failed
    assert _read_all(run_analysis(FIXTURES / rel, layout=layout).path) == _read_all(result.path)


def test_tree_with_several_jobs_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="expected one job here, found 2"):
        run_analysis(FIXTURES / "velora" / "Trajectory_results", layout="velora", out=tmp_path)
