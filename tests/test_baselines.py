"""Baselines check the tasks: an oracle failure or a nop pass is said plainly wherever results show."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import requires_bwrap, write_task

from trialbook.model.baselines import baseline_findings, is_baseline
from trialbook.model.outcome import Outcome


def test_findings_from_trials() -> None:
    trials = [
        ("ok", "gold", "oracle", Outcome.RESOLVED), ("ok", "gold", "oracle", Outcome.RESOLVED),
        ("bad", "gold", "oracle", Outcome.RESOLVED), ("bad", "gold", "oracle", Outcome.UNRESOLVED),
        ("bad", "gold", "oracle", Outcome.CANCELLED),  # not counted
        ("bad", "gold", "oracle", None),  # still running
        ("free", "floor", "nop", Outcome.RESOLVED), ("ok", "floor", "nop", Outcome.UNRESOLVED),
        ("bad", "gpt", "mini-swe-agent", Outcome.UNRESOLVED),  # contestants are not checks
    ]
    found = [(f.kind, f.task, f.variant, f.n_trials, f.n_resolved) for f in baseline_findings(trials)]
    assert found == [("nop_passes", "free", "floor", 1, 1), ("oracle_fails", "bad", "gold", 2, 1)]
    assert baseline_findings(trials)[1].message == (
        "oracle fails on bad (1 of 2 resolved: resolved=1, unresolved=1): check its tests and solution")
    assert is_baseline("Oracle") and not is_baseline(None) and not is_baseline("claude-code")


@requires_bwrap
def test_run_show_and_summary_name_broken_tasks(block_factory, tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    write_task(extra, "always-passes", test_sh="echo 1 > /logs/verifier/reward.txt\n")
    root = block_factory(tasks=["hello-world", "broken-verifier"], extra_tasks_dir=extra,
                         variants=[{"name": "gold", "agent": "oracle"}, {"name": "floor", "agent": "nop"}])
    res = subprocess.run([sys.executable, "-m", "trialbook.cli.main", "run", "--job", "j"],
                         cwd=root, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    text = " ".join(res.stdout.split())
    assert ("warning: oracle fails on broken-verifier (0 of 1 resolved: verifier_error=1): "
            "check its tests and solution") in text
    assert "warning: nop passes always-passes (1 of 1 resolved): the task is solved by doing nothing" in text
    job = root / "artifacts" / "jobs" / "j"
    summary = json.loads((job / "summary.json").read_text())
    assert [(f["kind"], f["task"]) for f in summary["baseline_findings"]] == [
        ("nop_passes", "always-passes"), ("oracle_fails", "broken-verifier")]
    assert "## Baseline checks" in (job / "summary.md").read_text()
    shown = subprocess.run([sys.executable, "-m", "trialbook.cli.main", "show", "--last", "--no-write"],
                           cwd=root, capture_output=True, text=True)
    assert "oracle fails on broken-verifier" in " ".join(shown.stdout.split())
    tiers = json.loads((job / "analysis" / "report_task_analysis.json").read_text())["tiers"]
    assert tiers["tasks"]["never"] == [] and sorted(tiers["tasks"]["unknown"]) == [
        "always-passes", "broken-verifier", "hello-world"]
