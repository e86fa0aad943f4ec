"""How a SWE-style trial was graded: the typed part of ``TrialRecord.extra`` that every reader
of a SWE layout fills and analysis reads (one place for the keys and their types)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from trialbook.model.trial import TrialRecord


class SweEval(BaseModel):
    """Grading facts of one SWE-style trial; None where the layout does not say."""

    model_config = ConfigDict(extra="forbid")

    #: The file the verdict came from (a report.json, a run_instance.log, an output.jsonl line).
    eval_source: str | None = None
    #: SWE-bench's per-test outcome lists (``FAIL_TO_PASS``/``PASS_TO_PASS`` -> success/failure).
    tests_status: dict[str, Any] | None = None
    #: What the grading report said of ``resolved``, before trialbook's own reading of the tests.
    report_resolved: bool | None = None
    #: The agent's patch was empty (None: no patch known).
    patch_empty: bool | None = None

    def write_to(self, extra: dict[str, Any]) -> None:
        """Store the known facts in a record's ``extra`` (unknown ones are left out)."""
        extra.update(self.model_dump(exclude_none=True))

    @classmethod
    def of(cls, record: TrialRecord) -> SweEval:
        """The facts a record holds; a value of the wrong type (an old index row) counts as unknown."""
        extra = record.extra
        source, tests, resolved, empty = (extra.get(k) for k in cls.model_fields)
        return cls(eval_source=source if isinstance(source, str) else None,
                   tests_status=tests if isinstance(tests, dict) else None,
                   report_resolved=resolved if isinstance(resolved, bool) else None,
                   patch_empty=empty if isinstance(empty, bool) else None)
