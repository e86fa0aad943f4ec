"""The ``evals`` section of a trajgen job's result.json (Harbor's ``JobStats.evals`` shape): unit figures
worked out by hand, and a real trajgen run in the sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_block, requires_bwrap

from trialbook.app.pipeline import run_block
from trialbook.jsonio import read_json
from trialbook.model.aggregate import aggregate
from trialbook.model.evals import eligible_ks, evals_key, harbor_evals
from trialbook.model.outcome import Outcome
from trialbook.model.trial import ExceptionInfo, TrialRecord


def rec(task: str, attempt: int, outcome: Outcome, reward: float | None, *, agent: str = "mini",
        model: str | None = "openai/gpt-x", exc: str | None = None) -> TrialRecord:
    return TrialRecord(trial_name=f"{task}__{agent}__{attempt}", job="j", task=task, variant=agent, agent=agent,
                       model=model, attempt=attempt, status="finished", outcome=outcome, reward=reward,
                       rewards=None if reward is None else {"reward": reward},
                       exception=ExceptionInfo(type=exc, message="m") if exc else None)


def test_keys_and_ks_follow_harbor() -> None:
    assert evals_key("mini", "openai/gpt-x", "swe") == "mini__openai/gpt-x__swe"
    assert evals_key("oracle", None, None) == "oracle__adhoc"
    assert eligible_ks(1) == [] and eligible_ks(4) == [2, 4] and eligible_ks(10) == [2, 4, 5, 8, 10]


def test_figures_by_hand() -> None:
    R, U, T = Outcome.RESOLVED, Outcome.UNRESOLVED, Outcome.TIMEOUT
    records = [rec("a", 1, R, 1.0), rec("a", 2, U, 0.0), rec("a", 3, U, 0.0), rec("a", 4, R, 1.0),
               rec("b", 1, U, 0.0), rec("b", 2, T, None, exc="AgentTimeoutError"), rec("b", 3, U, 0.0),
               rec("b", 4, U, 0.0), rec("b", 5, Outcome.CANCELLED, None),
               rec("a", 1, R, 1.0, agent="oracle", model=None)]
    evals = harbor_evals(records, "swe")
    assert sorted(evals) == ["mini__openai/gpt-x__swe", "oracle__swe"]
    mini = evals["mini__openai/gpt-x__swe"]
    assert (mini["n_trials"], mini["n_errors"]) == (7, 1)  # the timeout has no reward; cancelled is left out
    assert mini["metrics"] == [{"mean": pytest.approx(2 / 8)}]  # a trial without reward counts 0
    # task a: n=4, c=2 -> pass@2 = 1 - C(2,2)/C(4,2) = 5/6, pass@4 = 1; task b: c=0 -> 0
    assert mini["pass_at_k"] == {"2": pytest.approx(5 / 12), "4": pytest.approx(0.5)}
    assert mini["reward_stats"] == {"reward": {"1.0": ["a__mini__1", "a__mini__4"],
                                               "0.0": ["a__mini__2", "a__mini__3", "b__mini__1", "b__mini__3",
                                                       "b__mini__4"]}}
    assert mini["exception_stats"] == {"AgentTimeoutError": ["b__mini__2"]}
    assert evals["oracle__swe"]["pass_at_k"] == {}  # one attempt: Harbor reports no k below 2
    graded = [rec("a", 1, R, 0.5), rec("a", 2, R, 1.0)]
    assert harbor_evals(graded, None)["mini__openai/gpt-x__adhoc"]["pass_at_k"] == {}  # not binary


def test_only_trajgen_results_have_evals() -> None:
    records = [rec("a", 1, Outcome.RESOLVED, 1.0)]
    assert "evals" in aggregate(records, job="j", kind="trajgen", dataset="d")
    assert "evals" not in aggregate(records, job="j", kind="eval")


@requires_bwrap
def test_trajgen_run_writes_evals(tmp_path: Path) -> None:
    root = make_block(tmp_path, tasks=["hello-world"], kind="trajgen", attempts=2,
                      variants=[{"name": "oracle", "agent": "oracle"}, {"name": "nop", "agent": "nop"}])
    run_block(root / "config.yaml", "tg")
    evals = read_json(root / "artifacts" / "jobs" / "tg" / "result.json")["evals"]
    assert sorted(evals) == ["nop__tasks", "oracle__tasks"]  # no model: agent__dataset
    assert evals["oracle__tasks"]["pass_at_k"] == {"2": 1.0} and evals["nop__tasks"]["pass_at_k"] == {"2": 0.0}
    assert evals["oracle__tasks"]["metrics"] == [{"mean": 1.0}]
    assert evals["nop__tasks"]["reward_stats"] == {"reward": {"0.0": ["hello-world__nop__1", "hello-world__nop__2"]}}
