"""The parts of a VeloraHarness Run dir that are built from a trial's files, not copied.

* ``llm_completions/{instance_id}/NNNN_request.json`` / ``NNNN_response.json``: one pair per
  line of ``agent/litellm-trajectory.jsonl`` (every LLM call attempt, in call order). The
  request is what was sent (``model``, ``messages``, ``tools`` and the other parameters); the
  response is an OpenAI ``chat.completion`` (``id``, ``created``, ``model``, ``choices``,
  ``usage``), or ``{"error": {...}}`` for a failed call.
* ``eval_pilot2_output.jsonl``: one line with the instance's verdict and its FAIL_TO_PASS /
  PASS_TO_PASS detail (``tests_status`` plus passed/total counts per group).
* the benchmark folder name and ``max_iterations`` (the variant's step limit).
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from trialbook.grading.benchmark_type import detect_benchmark_type
from trialbook.jsonio import write_json
from trialbook.model.litellm_line import LiteLLMLine, read_litellm_log

#: Digits of the NNNN counter of llm_completions file names (more calls simply get more digits).
COUNTER_WIDTH = 4


def _epoch(stamp: str | None) -> int:
    if not stamp:
        return 0
    try:
        return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def completion_request(line: LiteLLMLine) -> dict[str, Any]:
    """The request of one logged call, as LiteLLM's ``completion()`` received it."""
    request: dict[str, Any] = {"model": line.model, "messages": line.messages}
    if line.tools is not None:
        request["tools"] = line.tools
    for key, value in line.params.items():
        request.setdefault(key, value)
    return request


def completion_response(line: LiteLLMLine) -> dict[str, Any]:
    """The reply of one logged call as an OpenAI ``chat.completion`` (``{"error": ...}`` when the call failed)."""
    if line.status != "success" or line.response is None:
        error = line.error.model_dump(mode="json") if line.error is not None else {"type": "unknown", "message": ""}
        return {"error": error, "model": line.model, "created": _epoch(line.end_time or line.start_time)}
    reply = line.response
    message = reply.as_message()
    usage = line.usage.model_dump(mode="json", exclude_none=True) if line.usage is not None else None
    return {
        "id": reply.response_id or f"trialbook-call-{line.seq}",
        "created": _epoch(line.end_time or line.start_time),
        "model": reply.response_model or line.model,
        "object": "chat.completion",
        "choices": [{"index": 0, "finish_reason": reply.finish_reason, "message": message}],
        "usage": usage,
        "cost_usd": line.cost_usd,
    }


def write_completions(log: Path, dest: Path, instance_id: str) -> int:
    """Write ``dest/llm_completions/{instance_id}/NNNN_{request,response}.json`` from ``log``; the number of pairs."""
    if not log.is_file():
        return 0
    lines = read_litellm_log(log)
    if not lines:
        return 0
    folder = dest / "llm_completions" / instance_id
    folder.mkdir(parents=True)
    for n, line in enumerate(lines, 1):
        stem = f"{n:0{COUNTER_WIDTH}d}"
        write_json(folder / f"{stem}_request.json", completion_request(line))
        write_json(folder / f"{stem}_response.json", completion_response(line))
    return len(lines)


def _group(entry: dict[str, Any], key: str) -> dict[str, int]:
    status = entry.get("tests_status") if isinstance(entry.get("tests_status"), dict) else {}
    group = status.get(key) if isinstance(status.get(key), dict) else {}
    passed = len(group.get("success") or [])
    return {"total": passed + len(group.get("failure") or []), "passed": passed}


def pilot_line(instance_id: str, model_dir: str, run: int, entry: dict[str, Any], patch: str | None,
               error: str | None) -> dict[str, Any]:
    """The ``eval_pilot2_output.jsonl`` line of one instance report entry (the F2P/P2P breakdown)."""
    return {
        "instance_id": instance_id, "model": model_dir, "run": run, "resolved": bool(entry.get("resolved")),
        "test_result": {"git_patch": patch, "report": {
            "empty_generation": not (patch and patch.strip()),
            "resolved": bool(entry.get("resolved")),
            "failed_apply_patch": entry.get("patch_successfully_applied") is False,
            "error_eval": error is not None,
            "test_timeout": False,
        }},
        "tests_status": entry.get("tests_status") or {},
        "F2P": _group(entry, "FAIL_TO_PASS"),
        "P2P": _group(entry, "PASS_TO_PASS"),
    }


def safe_folder_name(name: str, fallback: str) -> str:
    """``name`` usable as one folder of the tree: letters, digits, ``.``, ``_``, ``-`` (others become ``-``)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name.strip()).strip("-.")
    return safe or fallback


def benchmark_name(tasks: dict[str, Any] | None, job_name: str) -> str:
    """The ``{Benchmark}`` folder of a job, from its config's ``tasks`` section.

    SWE-style instances (``tasks.instances``) get the VeloraHarness benchmark type of their
    dataset name (RCT, Lite, LST, SWE-hard). Other tasks are not SWE-bench, so they are never
    labelled SWE-hard: their folder is the dataset's own name (``tasks.dataset_name``, else the
    tasks directory's name, else the job's), made safe for a path.
    """
    tasks = tasks if isinstance(tasks, dict) else {}
    dataset = tasks.get("dataset_name") if isinstance(tasks.get("dataset_name"), str) else None
    instances = tasks.get("instances") if isinstance(tasks.get("instances"), str) else None
    if instances:
        return detect_benchmark_type(dataset or Path(instances).name)
    path = tasks.get("path") if isinstance(tasks.get("path"), str) else None
    return safe_folder_name(dataset or (Path(path).name if path else "") or job_name, "tasks")


def max_iterations(variant: dict[str, Any] | None) -> int | None:
    """The variant's step limit (model calls before the agent stops); None when it has none."""
    if not isinstance(variant, dict):
        return None
    settings = variant.get("settings") if isinstance(variant.get("settings"), dict) else {}
    limit = settings.get("step_limit")
    if limit is None and variant.get("agent") == "mini-swe-agent":
        from trialbook.run.agents.miniswe import MiniSweSettings

        limit = MiniSweSettings.model_fields["step_limit"].default
    if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
        return limit
    return None
