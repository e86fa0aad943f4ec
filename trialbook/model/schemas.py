"""Registry of the JSON formats trialbook reads and writes, by short name, for ``trialbook schema``.

The pydantic models are the single source of truth; their JSON Schema (with field
descriptions) doubles as the format's documentation. Add an entry here when a module
defines a new on-disk format.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from trialbook.errors import TrialbookError
from trialbook.model.job_files import JobResults, JobSummary
from trialbook.model.litellm_line import LiteLLMLine
from trialbook.model.trajectory import Trajectory
from trialbook.model.trial import TrialRecord
from trialbook.model.verdict import Verdict

SCHEMAS: dict[str, type[BaseModel]] = {
    "atif": Trajectory,
    "job-results": JobResults,
    "litellm-line": LiteLLMLine,
    "summary": JobSummary,
    "trial": TrialRecord,
    "verdict": Verdict,
}


def register_schema(name: str, model: type[BaseModel]) -> None:
    """Make ``model``'s JSON Schema printable as ``trialbook schema NAME`` (for models outside ``model/``)."""
    SCHEMAS[name] = model


def schema_names() -> list[str]:
    """Known schema names, sorted."""
    return sorted(SCHEMAS)


def json_schema(name: str) -> dict[str, Any]:
    """JSON Schema of the format registered as ``name``; an unknown name raises TrialbookError."""
    try:
        model = SCHEMAS[name]
    except KeyError:
        raise TrialbookError(
            f"unknown schema {name!r} (known: {', '.join(schema_names())})"
        ) from None
    schema = model.model_json_schema()
    # A recursive model (a Trajectory embeds Trajectories) comes out as a bare "$ref"; put its
    # definition at the top so the document reads like any other schema (the refs stay valid).
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/") and len(schema) == 2:
        top = dict(schema["$defs"][ref.removeprefix("#/$defs/")])
        top["$defs"] = schema["$defs"]
        schema = top
    return schema
