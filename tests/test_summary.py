"""summary.json / summary.md: numbers checked by hand on a built native job, the demo run, and
the fixture trees of every layout (facts from their EXPECTED.json)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from summary_fixtures import hand_job

from trialbook.app.pipeline import run_block
from trialbook.app.show import show_path
from trialbook.cli.demo import create_demo_block
from trialbook.results.summary import summarize_job, write_summary
from trialbook.sources import open_source

FIXTURES = Path(__file__).parent / "fixtures"
REQUIRED_TOP = {"run_id", "experiment", "started_at", "finished_at", "status", "layout", "n_variants", "n_tasks",
                "n_trials", "failures", "overall_success_rate", "variants"}
REQUIRED_VARIANT = {"variant", "agent", "model", "n_trials", "n_success", "success_rate", "mean_reward", "pass_at_k",
                    "n_errors", "outcomes", "total_tokens", "cost_usd", "aiu", "mean_turns", "mean_tool_calls", "tasks"}
REQUIRED_TASK = {"task", "n_trials", "n_success", "success_rate", "mean_reward", "pass_at_k"}


def test_hand_numbers(tmp_path: Path) -> None:
    job = hand_job(tmp_path)
    s = summarize_job(open_source(job)[0])
    assert set(s) >= REQUIRED_TOP
    assert (s["run_id"], s["experiment"], s["layout"], s["status"]) == ("handjob", "handblock", "native", "completed")
    assert (s["started_at"], s["finished_at"]) == ("2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z")
    # 9 listed; counted = all but the cancelled and the running one
    assert (s["n_variants"], s["n_tasks"], s["n_trials"], s["n_trials_listed"]) == (2, 2, 7, 9)
    assert (s["n_unfinished"], s["n_cancelled"], s["failures"]) == (1, 1, 2)
    assert s["overall_success_rate"] == pytest.approx(3 / 7)
    assert s["k_max"] == 3
    alpha, beta = s["variants"]
    assert set(alpha) >= REQUIRED_VARIANT and all(set(t) >= REQUIRED_TASK for t in alpha["tasks"])
    assert (alpha["variant"], alpha["agent"], alpha["model"]) == ("alpha", "mini", "m1")
    assert (alpha["n_trials"], alpha["n_success"], alpha["n_errors"]) == (5, 3, 1)
    assert alpha["success_rate"] == pytest.approx(0.6)
    assert alpha["mean_reward"] == pytest.approx((1 + 0 + 1 + 0.5) / 4)
    # t1: n=3 c=1 -> pass@1 1/3, pass@2 2/3, pass@3 1; t2: n=2 c=2 -> 1, 1, undefined
    assert alpha["pass_at_k"] == {"1": pytest.approx(2 / 3), "2": pytest.approx(5 / 6), "3": None}
    assert alpha["outcomes"] == {"agent_error": 1, "cancelled": 1, "resolved": 3, "unresolved": 1}
    assert (alpha["total_tokens"], alpha["aiu"]) == (600, 0.5)  # 100 + (150+50) + 300
    assert alpha["cost_usd"] == pytest.approx(0.03)
    assert (alpha["mean_turns"], alpha["mean_tool_calls"]) == (5.0, 4.0)
    t1, t2 = alpha["tasks"]
    assert (t1["task"], t1["n_trials"], t1["n_success"], t1["mean_reward"]) == ("t1", 3, 1, 0.5)
    assert t1["pass_at_k"] == {"1": pytest.approx(1 / 3), "2": pytest.approx(2 / 3), "3": 1.0}
    assert (t2["n_trials"], t2["n_success"], t2["success_rate"], t2["mean_reward"]) == (2, 2, 1.0, 0.75)
    assert t2["pass_at_k"] == {"1": 1.0, "2": 1.0, "3": None}
    assert (beta["n_trials"], beta["n_success"], beta["n_errors"], beta["success_rate"]) == (2, 0, 1, 0.0)
    assert beta["pass_at_k"] == {"1": 0.0, "2": 0.0, "3": None}  # t2 has no counted attempt
    assert (beta["total_tokens"], beta["cost_usd"], beta["aiu"], beta["mean_turns"]) == (None, None, None, None)
    assert [t["task"] for t in beta["tasks"]] == ["t1", "t2"] and beta["tasks"][1]["n_trials"] == 0


def test_markdown_renders_the_same_numbers(tmp_path: Path) -> None:
    s = summarize_job(open_source(hand_job(tmp_path))[0])
    json_path, md_path = write_summary(s, tmp_path / "out")
    assert json.loads(json_path.read_text())["overall_success_rate"] == pytest.approx(3 / 7)
    md = md_path.read_text()
    assert "# Summary of handjob" in md and "| success rate | 42.9% |" in md
    assert "| alpha | mini | m1 | 5 | 3 | 60.0% | 0.625 | 66.7% | 83.3% | — | 1 | 600 |" in md
    assert "## Tasks of beta" in md and "| t2 | 0 | 0 | — | — | — | — | — |" in md


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = create_demo_block(tmp_path_factory.mktemp("demo") / "block")
    report = run_block(root / "config.yaml", "demo")
    assert "summary" in report.steps, report.step_errors
    return root


def test_run_writes_summary_and_index(demo: Path) -> None:
    job = demo / "artifacts" / "jobs" / "demo"
    s = json.loads((job / "summary.json").read_text())
    assert (job / "summary.md").read_text().startswith("# Summary of demo")
    # 5 tasks x {oracle, nop} x 3 attempts; the broken-verifier task is a verifier_error for both
    assert (s["n_trials"], s["n_variants"], s["n_tasks"], s["failures"]) == (30, 2, 5, 6)
    assert s["overall_success_rate"] == pytest.approx(12 / 30)
    oracle = next(v for v in s["variants"] if v["variant"] == "oracle")
    assert oracle["pass_at_k"] == {"1": pytest.approx(0.8), "2": pytest.approx(0.8), "3": pytest.approx(0.8)}
    assert oracle["outcomes"] == {"resolved": 12, "verifier_error": 3}
    assert (demo / "results" / "index.db").is_file()


def test_show_cli_json_and_last(demo: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "trialbook.cli.main", "show", "--last", "--json"],
                         cwd=demo, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    assert s["job"] == "demo" and s["n_trials"] == 30
    people = subprocess.run([sys.executable, "-m", "trialbook.cli.main", "show", "demo"], cwd=demo,
                            capture_output=True, text=True)
    assert people.returncode == 0 and "oracle" in people.stdout and "pass@3" in people.stdout


#: What ``show --last`` on an up-to-date index must not import (it only reads the index): the
#: pydantic models (config, trials, trajectories, typer's adapters), the readers, the reindex,
#: the gateway's LiteLLM, rich's progress display, the writer lock.
NOT_FOR_SHOW = ("pydantic", "litellm", "rich.progress", "filelock", "trialbook.config", "trialbook.sources.base",
                "trialbook.sources.registry", "trialbook.sources.native", "trialbook.sources.harbor",
                "trialbook.sources.velora", "trialbook.model.trial", "trialbook.model.trajectory",
                "trialbook.model.job_files", "trialbook.index.reindex", "trialbook.index.jobread",
                "trialbook.run")


def _imported(stderr: str) -> set[str]:
    return {line.rpartition("|")[2].strip() for line in stderr.splitlines() if line.startswith("import time:")}


def test_show_last_imports_only_what_it_uses(demo: Path) -> None:
    """A structure test, not a timing one: ``show --last --json`` of a job the index holds up to date
    reads the index and imports none of the heavy modules (see NOT_FOR_SHOW)."""
    time.sleep(2.1)  # the run's files (config.yaml's status included) leave the racy window
    cmd = [sys.executable, "-m", "trialbook.cli.main", "show", "--last", "--json", "--no-write"]
    first = subprocess.run(cmd, cwd=demo, capture_output=True, text=True)  # brings the index up to date
    assert first.returncode == 0, first.stderr
    for args in (cmd[1:], [*cmd[1:4], "demo", *cmd[5:]]):  # --last, then the job by name
        res = subprocess.run([sys.executable, "-X", "importtime", *args], cwd=demo, capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        imported = _imported(res.stderr)
        assert "trialbook.index.queries" in imported and "typer" in imported  # the check sees the imports
        heavy = sorted(m for m in imported if any(m == h or m.startswith(h + ".") for h in NOT_FOR_SHOW))
        assert not heavy, f"{' '.join(args[2:])} imported {heavy}"
        a, b = json.loads(first.stdout), json.loads(res.stdout)
        assert {**a, "generated_at": None} == {**b, "generated_at": None}
    from trialbook.model.job_files import check_summary

    check_summary(b)  # what show prints and writes without validating it keeps the schema


def test_show_out_dir_for_read_only_source(tmp_path: Path) -> None:
    shown = show_path(FIXTURES / "harbor" / "jobs", out=tmp_path / "o")
    assert [s.written[0] for s in shown] == [tmp_path / "o" / "summary.json"]
    assert not (FIXTURES / "harbor" / "jobs" / "mixed-agents" / "summary.json").exists()


# -- every layout: numbers against the facts each fixture's EXPECTED.json records -------------

def _expected(name: str) -> dict:
    return json.loads((FIXTURES / name / "EXPECTED.json").read_text())


def _summaries(path: Path) -> dict[str, dict]:
    return {s.summary["job"]: s.summary for s in show_path(path, write=False)}


def test_harbor_numbers() -> None:
    exp = _expected("harbor")
    s = _summaries(FIXTURES / "harbor" / "jobs")[exp["job"]]
    assert (s["n_trials"], s["failures"]) == (exp["n_total_trials"], exp["n_errored_trials"])
    assert s["overall_success_rate"] == pytest.approx(sum(t["resolved"] for t in exp["trials"]) / 18)
    terminus = next(v for v in s["variants"] if v["agent"] == "terminus-2")
    tt = [t for t in exp["trials"] if t["agent"] == "terminus-2"]
    assert terminus["total_tokens"] == sum(t["n_input_tokens"] + t["n_output_tokens"] for t in tt if t["n_input_tokens"])


def test_pier_copilot_numbers() -> None:
    exp = _expected("pier_copilot")
    s = _summaries(FIXTURES / "pier_copilot" / "jobs")[exp["job"]]
    assert s["n_trials"] == 5 and s["failures"] == sum(t["exception_type"] is not None for t in exp["trials"])
    assert s["overall_success_rate"] == pytest.approx(sum(t["resolved"] for t in exp["trials"]) / 5)
    for v in s["variants"]:
        tt = [t for t in exp["trials"] if v["model"].endswith("/" + t["model"]) and t["input_tokens"] is not None]
        assert tt
        assert v["aiu"] == pytest.approx(sum(t["total_nano_aiu"] for t in tt) * 1e-9)
        assert v["total_tokens"] == sum(t["input_tokens"] + t["output_tokens"] for t in tt)


def test_velora_numbers() -> None:
    exp = _expected("velora")
    got = _summaries(FIXTURES / "velora" / "Trajectory_results")
    for bench in ("RCT", "SWE-hard"):
        runs = [r for r in exp["runs"] if r["benchmark"] == bench]
        s = got[bench]
        assert s["n_trials"] == len(runs)
        assert s["failures"] == sum(r["outcome"] not in ("resolved", "unresolved") for r in runs)
        assert s["overall_success_rate"] == pytest.approx(sum(r["outcome"] == "resolved" for r in runs) / len(runs))
        for v in s["variants"]:
            mine = [r for r in runs if r["model"] == v["variant"]]
            assert v["total_tokens"] == sum(r["prompt_tokens"] + r["completion_tokens"] for r in mine)
            assert v["cost_usd"] == pytest.approx(sum(r["accumulated_cost"] for r in mine))


def test_legacy_numbers() -> None:
    exp = _expected("legacy")
    (s,) = _summaries(FIXTURES / "legacy").values()
    assert s["experiment"] == exp["trials"][0]["experiment"] and s["n_trials"] == 8
    assert s["failures"] == sum(t["outcome"] == "timeout" for t in exp["trials"])
    for v in s["variants"]:
        mine = [t for t in exp["trials"] if t["variant"] == v["variant"]]
        assert v["n_success"] == sum(t["resolved"] for t in mine)
        assert v["total_tokens"] == sum(t["total_tokens"] for t in mine)
        assert v["aiu"] == pytest.approx(sum(t["aiu"] for t in mine))
        assert v["mean_turns"] == pytest.approx(sum(t["turns"] for t in mine) / len(mine))


def test_miniswe_openhands_swebench_numbers() -> None:
    exp = _expected("miniswe")["batches"]
    got = _summaries(FIXTURES / "miniswe")
    for batch in ("v1", "v2"):
        inst = exp[batch]["instances"]
        s = got[batch]
        assert s["n_trials"] == len(inst) and s["failures"] == sum(i["outcome"] == "agent_error" for i in inst)
        assert s["variants"][0]["n_success"] == sum(i["resolved"] for i in inst)
        assert s["variants"][0]["total_tokens"] == sum(i["prompt_tokens"] + i["completion_tokens"] for i in inst)
    oh = _expected("openhands")["trials"]
    (s,) = _summaries(FIXTURES / "openhands" / "outputs").values()
    assert (s["n_trials"], s["failures"]) == (len(oh), 0)
    assert s["variants"][0]["n_success"] == sum(t["resolved"] for t in oh)
    assert s["total_tokens"] == sum(t["prompt_tokens"] + t["completion_tokens"] for t in oh)
    sw = _expected("swebench")
    (s,) = _summaries(FIXTURES / "swebench").values()
    outcomes = Counter(i["outcome"] for i in sw["instances"])
    assert s["n_trials"] == sw["summary"]["total_instances"]
    assert s["variants"][0]["n_success"] == sw["summary"]["resolved_instances"]
    assert s["failures"] == outcomes["error"]  # an empty patch is graded unresolved, not an error
