"""Every reader of a SWE layout records how a trial was graded in the same typed shape
(:class:`trialbook.model.swe_eval.SweEval`), which analysis reads without knowing the layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from trialbook.model.swe_eval import SweEval
from trialbook.sources.registry import open_source

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("layout", ["miniswe", "openhands", "swebench", "velora"])
def test_swe_readers_fill_the_typed_grading_facts(layout: str) -> None:
    trials = [t for job in open_source(FIXTURES / layout, layout) for t in job.trials]
    assert trials
    graded = 0
    for trial in trials:
        stored = {k: v for k, v in trial.record.extra.items() if k in SweEval.model_fields and v is not None}
        facts = SweEval.model_validate(stored)  # the keys a reader wrote have the contract's types
        assert facts == SweEval.of(trial.record)
        graded += facts.eval_source is not None
    assert graded > 0  # each layout's fixture has graded trials, and says where their verdict came from


def test_wrong_types_from_an_old_index_count_as_unknown() -> None:
    from trialbook.model.trial import TrialRecord

    record = TrialRecord(trial_name="t", job="j", task="t", variant="v", agent="a", attempt=1,
                         extra={"eval_source": 3, "tests_status": [], "report_resolved": "yes", "patch_empty": True})
    assert SweEval.of(record) == SweEval(patch_empty=True)
    extra: dict = {}
    SweEval(eval_source="r.json", report_resolved=False).write_to(extra)
    assert extra == {"eval_source": "r.json", "report_resolved": False}
