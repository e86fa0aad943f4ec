"""im.jsonl records as rows of a Hugging Face dataset: schema-stable rows, and TRL's chat format.

Two shapes, for two uses (the writer is :mod:`trialbook.exports.hf`):

* :func:`hf_row` keeps the record as it is in im.jsonl (OpenAI fine-tuning messages with
  ``weight`` marks, tool-call ``arguments`` as JSON text) and stores ``tools`` as JSON text:
  every row has the same column types whatever tools the agents had, so datasets of any
  origin concatenate and nothing is padded. It is the lossless one.
* :func:`trl_row` is what TRL's trainers take for a conversational language-modeling dataset
  with tool calling: ``messages`` whose assistant ``tool_calls`` carry ``arguments`` as
  **objects** (chat templates render them with ``tojson``), and ``tools`` as a list of
  JSON-schema objects. Turns marked ``weight: 0`` (copied context, deterministic dispatch) are
  removed with their tool results, as for LLaMA-Factory, since TRL has no per-turn mask.
"""

from __future__ import annotations

from typing import Any

from trialbook.sft.messages import dumps_json, template_messages, training_messages

#: Keys of a message in the ``hf`` rows (a message lacks the ones it does not use: null there).
MESSAGE_KEYS = ("role", "content", "reasoning_content", "tool_calls", "tool_call_id", "name", "weight")
#: Identity and score columns shared by both shapes, in this order.
META_KEYS = ("id", "job", "task", "variant", "attempt", "score", "resolved")


def hf_row(record: dict[str, Any]) -> dict[str, Any]:
    """The ``hf`` row of one im.jsonl record: messages as they are, tools as JSON text, provenance."""
    meta = record.get("meta") or {}
    return {
        **{k: record.get(k) for k in META_KEYS},
        "messages": [{k: m.get(k) for k in MESSAGE_KEYS} for m in record["messages"]],
        "tools": dumps_json(record.get("tools") or []).decode(),
        "source_layout": meta.get("source_layout"),
        "trial_path": meta.get("trial_path"),
        "converter_version": meta.get("converter_version"),
    }


def trl_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages in TRL's chat format: untrained turns removed, tool-call arguments as objects, no ``weight``."""
    out = []
    for message in template_messages(training_messages(messages)):
        message = {k: v for k, v in message.items() if k != "weight"}
        if message.get("tool_calls"):
            message["tool_calls"] = [
                {"id": c.get("id"), "type": c.get("type", "function"),
                 "function": {"name": c["function"]["name"], "arguments": c["function"]["arguments"]}}
                for c in message["tool_calls"]
            ]
        out.append(message)
    return out


def trl_row(record: dict[str, Any]) -> dict[str, Any]:
    """The TRL row of one im.jsonl record: ``messages`` and ``tools`` (objects), then identity columns."""
    return {"messages": trl_messages(record["messages"]), "tools": record.get("tools") or [],
            **{k: record.get(k) for k in META_KEYS}}
