"""Removing credentials from data before trialbook writes it (LLM logs, native trajectories, ATIF).

Two rules: dict keys that name a credential (``api_key``, ``authorization``, ``x-api-key``...)
are dropped with their values, and every string has known secret values replaced by
``***REDACTED***``: the values passed in plus the run's secrets (:mod:`trialbook.secrets`). Token *counts* (``max_tokens``, ``prompt_tokens``)
are not credentials and are kept.
"""

from __future__ import annotations

from typing import Any

from trialbook.config import redact_text
from trialbook.secrets import CREDENTIAL_KEY

#: Dict keys whose values are credentials; they are dropped from everything written.
SECRET_KEY = CREDENTIAL_KEY


def scrub(obj: Any, secrets: list[str] | None = None) -> Any:
    """A copy of ``obj`` with credential keys removed and secret values replaced in every string."""
    values = [s for s in (secrets or []) if s and len(s) >= 4]
    if isinstance(obj, dict):
        return {str(k): scrub(v, values) for k, v in obj.items() if not SECRET_KEY.search(str(k))}
    if isinstance(obj, list | tuple):
        return [scrub(v, values) for v in obj]
    if isinstance(obj, str):
        return redact_text(obj, values)
    return obj
