"""End-to-end SWE-style jobs in the real bubblewrap sandbox: report.json per trial and per job, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import requires_bwrap

from trialbook.app.pipeline import run_block
from trialbook.app.swe_demo import EXAMPLE_COMMITS, build_example_repo, example_dir
from trialbook.block.init import init_block
from trialbook.jsonio import read_json

pytestmark = requires_bwrap

ROWS = {r["instance_id"]: r for r in map(json.loads, example_dir().joinpath("instances.jsonl").read_text().splitlines())}
CLAMP, MEAN, MEDIAN, VERSION = sorted(ROWS)
OPS = "tests.test_ops.OpsTest"
STATS = "tests.test_stats.StatsTest"
EMPTY = {"success": [], "failure": []}


def t(name: str, cls: str) -> str:
    return f"{name} ({cls}.{name})"


def swe_block(tmp_path: Path, rows: list[dict[str, Any]], **overrides: Any) -> Path:
    """A block with the example repository built at ``calc-repo/`` and ``rows`` as its instances."""
    root = tmp_path / "block"
    root.mkdir(parents=True)
    build_example_repo(root / "calc-repo")
    (root / "instances.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config: dict[str, Any] = {
        "kind": "eval", "tasks": {"instances": "instances.jsonl"},
        "variants": [{"name": "oracle", "agent": "oracle"}], "concurrency": 4, "attempts": 1,
        "timeouts": {"environment_setup": 60, "agent": 30, "verifier": 30},
    }
    config.update(overrides)
    init_block(root, "eval", config_text=yaml.safe_dump(config, sort_keys=False))
    return root


def trial_files(job: Path, name: str) -> tuple[dict, Path]:
    d = job / name
    return read_json(d / "trial.json"), d / "evaluation"


def test_example_job_with_oracle_and_nop(tmp_path: Path) -> None:
    """The bundled example as `trialbook demo --swe` runs it: every report checked field by field."""
    out = subprocess.run([sys.executable, "-m", "trialbook.cli.main", "demo", str(tmp_path / "demo"), "--swe",
                          "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    job = Path(json.loads(out.stdout)["job_dir"])
    agg = read_json(job / "results.json")
    assert agg["status"] == "completed" and agg["outcomes"] == {"resolved": 1, "unresolved": 7}
    assert (agg["benchmark_type"], agg["dataset_name"]) == ("SWE-hard", "trialbook-swe-example")
    o = agg["swebench"]["oracle"]["1"]
    assert {k: o[k] for k in ("total_instances", "submitted_instances", "completed_instances",
                              "resolved_instances", "unresolved_instances", "empty_patch_instances",
                              "error_instances")} == {
        "total_instances": 4, "submitted_instances": 4, "completed_instances": 3, "resolved_instances": 1,
        "unresolved_instances": 2, "empty_patch_instances": 1, "error_instances": 0}
    assert (o["resolved_ids"], o["unresolved_ids"], o["empty_patch_ids"]) == ([CLAMP], [MEAN, MEDIAN], [VERSION])
    assert o["report"] == "reports/oracle/attempt_1/report.json"
    n = agg["swebench"]["nop"]["1"]
    assert (n["empty_patch_instances"], n["completed_instances"], n["resolved_instances"]) == (4, 0, 0)

    expected_oracle = {
        CLAMP: {"patch_is_None": False, "patch_exists": True, "patch_successfully_applied": True, "resolved": True,
                "tests_status": {
                    "FAIL_TO_PASS": {"success": [t("test_clamp_high", OPS)], "failure": []},
                    "PASS_TO_PASS": {"success": [t(x, OPS) for x in ("test_add", "test_mul", "test_clamp_low",
                                                                     "test_clamp_inside")], "failure": []},
                    "FAIL_TO_FAIL": EMPTY, "PASS_TO_FAIL": EMPTY}},
        MEAN: {"patch_is_None": False, "patch_exists": True, "patch_successfully_applied": True, "resolved": False,
               "tests_status": {
                   "FAIL_TO_PASS": {"success": [t("test_mean_empty", STATS)], "failure": []},
                   "PASS_TO_PASS": {"success": [t("test_mean_single", STATS), t("test_median_odd", STATS)],
                                    "failure": [t("test_mean", STATS)]},
                   "FAIL_TO_FAIL": EMPTY, "PASS_TO_FAIL": EMPTY}},
        MEDIAN: {"patch_is_None": False, "patch_exists": True, "patch_successfully_applied": True, "resolved": False,
                 "tests_status": {
                     "FAIL_TO_PASS": {"success": [t("test_median_even", STATS)],
                                      "failure": [t("test_median_empty", STATS)]},
                     "PASS_TO_PASS": {"success": [t(x, STATS) for x in ("test_mean", "test_mean_single",
                                                                         "test_median_odd")], "failure": []},
                     "FAIL_TO_FAIL": EMPTY, "PASS_TO_FAIL": EMPTY}},
        VERSION: {"patch_is_None": False, "patch_exists": False, "patch_successfully_applied": False,
                  "resolved": False},
    }
    # the job's report.json is the first variant's (oracle) run; every run also has its own under reports/
    assert read_json(job / "report.json") == expected_oracle
    assert list(read_json(job / "report.json")[CLAMP]) == [
        "patch_is_None", "patch_exists", "patch_successfully_applied", "resolved", "tests_status"]
    assert read_json(job / "reports" / "oracle" / "attempt_1" / "report.json") == expected_oracle
    empty_entry = {"patch_is_None": False, "patch_exists": False, "patch_successfully_applied": False,
                   "resolved": False}
    assert read_json(job / "reports" / "nop" / "attempt_1" / "report.json") == {i: empty_entry for i in ROWS}

    for iid, resolution, outcome in ((CLAMP, "FULL", "resolved"), (MEAN, "NO", "unresolved"),
                                     (MEDIAN, "PARTIAL", "unresolved")):
        rec, ev = trial_files(job, f"{iid}__oracle__1")
        assert rec["outcome"] == outcome and rec["task"] == iid
        assert read_json(ev / "report.json") == {iid: expected_oracle[iid]}
        verdict = read_json(ev / "verdict.json")
        assert verdict["details"]["resolution"] == resolution and verdict["source"] == "report.json"
        assert rec["reward"] == (1.0 if outcome == "resolved" else 0.0)
        # the patch is the gold patch as git diff writes it (full index lines); the tests ran between markers
        patch = (ev / "patch.diff").read_text()
        added = [ln for ln in patch.splitlines() if ln.startswith(("+", "-")) and not ln.startswith(("+++", "---"))]
        gold = [ln for ln in ROWS[iid]["patch"].splitlines() if ln.startswith(("+", "-"))
                and not ln.startswith(("+++", "---"))]
        assert added == gold and "tests/" not in patch
        output = (ev / "test_output.txt").read_text()
        assert output.index(">>>>> Start Test Output") < output.index(">>>>> End Test Output")
        assert ">>>>> Test Exit Code: " in output
        eval_sh = (ev / "eval.sh").read_text()
        assert eval_sh.startswith("#!/bin/bash") and ROWS[iid]["test_patch"] in eval_sh
        log = (ev / "run_instance.log").read_text()
        assert "applying patch.diff: exit code 0" in log and "report: resolved=" in log
    rec, _ = trial_files(job, f"{MEAN}__oracle__1")
    assert rec["rewards"] == {"reward": 0.0, "f2p": 1.0, "p2p": pytest.approx(2 / 3)}
    assert rec["reason"] == "resolution NO: FAIL_TO_PASS 1/1, PASS_TO_PASS 2/3 passed"
    for name in (f"{VERSION}__oracle__1", f"{CLAMP}__nop__1"):
        rec, ev = trial_files(job, name)
        assert rec["outcome"] == "unresolved" and rec["reason"] == "empty patch"
        assert (ev / "patch.diff").read_text() == "" and not (ev / "test_output.txt").exists()
        assert (ev / "eval.sh").exists() and "empty patch" in (ev / "run_instance.log").read_text()


def test_agent_edits_checkout_patch_excludes_test_files_and_pytest_via_ro_binds(tmp_path: Path) -> None:
    """A command agent edits /app (a new file too, and a test file); grading uses pytest from a bound venv."""
    venv_python = Path(sys.executable)
    rows = [dict(ROWS[CLAMP], log_parser="pytest", test_cmd=f"{venv_python} -m pytest -rA -p no:cacheprovider",
                 FAIL_TO_PASS=["tests/test_ops.py::OpsTest::test_clamp_high"],
                 PASS_TO_PASS=["tests/test_ops.py::OpsTest::test_add", "tests/test_ops.py::OpsTest::test_mul"])]
    fix = ("python3 - <<'EOF'\nimport pathlib\np = pathlib.Path('calc/ops.py')\n"
           "p.write_text(p.read_text().replace('    return x\\n', '    return min(x, hi)\\n'))\nEOF\n"
           "echo 'NOTES = 1' > calc/notes.py; echo '# agent was here' >> tests/test_ops.py; "
           "git status --porcelain > /logs/agent/status.txt")
    binds = sorted({sys.prefix, sys.base_prefix, str(venv_python.resolve().parent.parent)})
    root = swe_block(tmp_path, rows, variants=[{"name": "cmd", "agent": "command", "command": fix}],
                     environment={"ro_binds": binds})
    job = run_block(root / "config.yaml", "j").outcome.job_dir
    rec, ev = trial_files(job, CLAMP)  # one variant, one attempt: trial dirs are named by instance id
    assert rec["outcome"] == "resolved", (ev / "run_instance.log").read_text() + (ev / "test_output.txt").read_text()
    # git works inside the sandbox on the checkout
    status = (job / CLAMP / "agent" / "status.txt").read_text()
    assert " M calc/ops.py" in status and "?? calc/notes.py" in status
    patch = (ev / "patch.diff").read_text()
    assert "diff --git a/calc/notes.py b/calc/notes.py\nnew file mode 100644" in patch
    assert "+    return min(x, hi)" in patch and "tests/test_ops.py" not in patch
    assert "PASSED tests/test_ops.py::OpsTest::test_clamp_high" in (ev / "test_output.txt").read_text()
    assert read_json(ev / "report.json")[CLAMP]["tests_status"]["PASS_TO_PASS"] == {
        "success": ["tests/test_ops.py::OpsTest::test_add", "tests/test_ops.py::OpsTest::test_mul"], "failure": []}
    assert not (job / "reports").exists() and read_json(job / "report.json") == read_json(ev / "report.json")


def test_patch_that_does_not_apply_hanging_tests_broken_test_patch_and_unreachable_repo(tmp_path: Path) -> None:
    bogus = ("diff --git a/calc/ops.py b/calc/ops.py\n--- a/calc/ops.py\n+++ b/calc/ops.py\n"
             "@@ -1,2 +1,2 @@\n-this line is not in the file\n+neither is this one\n")
    rows = [
        dict(ROWS[CLAMP]),
        dict(ROWS[MEAN]),
        dict(ROWS[MEAN], instance_id="hangs-1", test_cmd="sleep 300; echo", timeout_s=2),
        dict(ROWS[MEDIAN], instance_id="broken-test-patch-1",
             test_patch=ROWS[MEDIAN]["test_patch"].replace("median([3, 1, 2])", "median([9, 9, 9])")),
        dict(ROWS[CLAMP], instance_id="unreachable-1", repo=str(tmp_path / "no-such-repo")),
        dict(ROWS[CLAMP], instance_id="symlink-1"),
    ]
    # calc__clamp-1: the agent submits a patch that does not apply; elsewhere it makes a harmless edit
    # symlink-1: it links model.patch to a file that, read on the host, would leak the host's copy
    cmd = (f"if [ \"$TRIALBOOK_TASK\" = {CLAMP} ]; then printf '%s' '{bogus}' > /logs/agent/model.patch; "
           "elif [ \"$TRIALBOOK_TASK\" = symlink-1 ]; then ln -s /etc/hostname /logs/agent/model.patch; "
           "else echo '# touched' >> calc/__init__.py; fi")
    root = swe_block(tmp_path, rows, tasks={"instances": "instances.jsonl", "dataset_name": "my_swe_lite_subset"},
                     variants=[{"name": "cmd", "agent": "command", "command": cmd}])
    job = run_block(root / "config.yaml", "j").outcome.job_dir
    agg = read_json(job / "results.json")
    assert agg["benchmark_type"] == "Lite"
    assert agg["outcomes"] == {"infra_error": 1, "timeout": 1, "unresolved": 2, "verifier_error": 2}

    rec, ev = trial_files(job, CLAMP)
    assert rec["outcome"] == "unresolved"
    assert rec["reason"].startswith(f"patch does not apply to a fresh checkout at {EXAMPLE_COMMITS[0][:12]}: error:")
    assert read_json(ev / "report.json") == {CLAMP: {"patch_is_None": False, "patch_exists": True,
                                                     "patch_successfully_applied": False, "resolved": False}}
    assert (ev / "patch.diff").read_text() == bogus
    assert ">>>>> Patch Apply Failed" in (ev / "run_instance.log").read_text()
    assert not (ev / "test_output.txt").exists()

    rec, ev = trial_files(job, MEAN)
    assert rec["outcome"] == "unresolved" and "FAIL_TO_PASS 0/1" in rec["reason"]
    assert (ev / "patch.diff").read_text().count("+# touched") == 1

    rec, ev = trial_files(job, "hangs-1")
    assert rec["outcome"] == "timeout" and rec["reason"] == "test run timed out after 2s"
    assert rec["exception"]["type"] == "VerifierTimeoutError" and not (ev / "report.json").exists()
    output = (ev / "test_output.txt").read_text()
    assert ">>>>> Start Test Output" in output and ">>>>> End Test Output" not in output
    assert subprocess.run(["pgrep", "-f", "sleep 300; echo"], capture_output=True).stdout == b""

    rec, ev = trial_files(job, "broken-test-patch-1")
    assert rec["outcome"] == "verifier_error"
    assert rec["reason"] == f"test_patch of broken-test-patch-1 does not apply at {EXAMPLE_COMMITS[1][:12]}"
    assert not (ev / "report.json").exists() and "Test Patch Apply Failed" in (ev / "test_output.txt").read_text()

    rec, ev = trial_files(job, "unreachable-1")
    assert rec["outcome"] == "infra_error" and rec["exception"]["phase"] == "environment_setup"
    assert "cannot clone" in rec["reason"] and "no-such-repo" in rec["reason"]

    rec, ev = trial_files(job, "symlink-1")
    assert rec["outcome"] == "verifier_error" and "symbolic link" in rec["reason"]
    assert not (ev / "patch.diff").exists()

    summary = agg["swebench"]["cmd"]["1"]
    assert summary["error_ids"] == ["broken-test-patch-1", "hangs-1", "symlink-1", "unreachable-1"]
    assert summary["unresolved_ids"] == [CLAMP, MEAN] and summary["completed_instances"] == 2
    assert (summary["total_instances"], summary["submitted_instances"], summary["empty_patch_instances"]) == (6, 6, 0)
    assert set(read_json(job / "report.json")) == {CLAMP, MEAN}
