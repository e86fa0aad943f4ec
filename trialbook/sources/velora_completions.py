"""A VeloraHarness Run dir's ``llm_completions/{instance_id}/NNNN_request.json`` / ``NNNN_response.json``.

One request/response pair per LLM call (OpenHands' completion log). Listing a run only counts
the pairs (one directory listing); the responses are parsed only when the run's output.jsonl
carries no usage, to sum their ``usage`` blocks instead.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from trialbook.errors import SourceError
from trialbook.model.usage import Usage
from trialbook.sources.coerce import as_amount, as_count
from trialbook.sources.safe import SafeTree

_RESPONSE = re.compile(r"^(\d+)_response\.json$")


def response_files(run: Path, tree: SafeTree, instance: str) -> list[Path]:
    """The run's response files in call order (the instance's folder, else every folder of llm_completions/)."""
    base = run / "llm_completions"
    if not tree.is_dir(base):
        return []
    folders = [base / instance] if tree.is_dir(base / instance) else tree.subdirs(base)
    found = [(int(m.group(1)), f) for d in folders for f in tree.files(d, "_response.json")
             if (m := _RESPONSE.match(f.name))]
    return [f for _, f in sorted(found)]


def _usage_of(response: Any) -> Usage | None:
    if not isinstance(response, dict) or "error" in response and "choices" not in response:
        return None
    usage = response.get("usage") if isinstance(response.get("usage"), dict) else {}
    details = usage.get("prompt_tokens_details") if isinstance(usage.get("prompt_tokens_details"), dict) else {}
    prompt, completion = as_count(usage.get("prompt_tokens")), as_count(usage.get("completion_tokens"))
    total = as_count(usage.get("total_tokens"))
    if total is None and prompt is not None and completion is not None:
        total = prompt + completion
    return Usage(prompt_tokens=prompt, completion_tokens=completion,
                 cached_tokens=as_count(usage.get("cached_tokens", details.get("cached_tokens"))),
                 total_tokens=total,
                 cost_usd=as_amount(response.get("cost_usd")),
                 n_llm_calls=1)


def completions_usage(files: list[Path], tree: SafeTree) -> Usage | None:
    """Usage summed over the answered calls of ``files`` (None when none is readable)."""
    usages = []
    for path in files:
        try:
            usages.append(_usage_of(tree.read_json(path)))
        except SourceError:
            continue
    found = [u for u in usages if u is not None]
    return Usage.total(found) if found else None
