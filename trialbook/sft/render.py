"""Rendering chat messages into the text a tokenizer counts, in chunks.

:func:`openai_chunks` is OpenAI's counting recipe (one chunk per message; the framing tokens
are added by the caller). A chunk ends where the tokenizer splits anyway, so the count of the
whole text is the sum of the chunk counts, and prompts repeated across examples (system
prompt, tool list, task instruction) are counted once. Chunks are ``(text, cacheable)``
pairs. Hugging Face tokenizers render with the model's own template
(:mod:`trialbook.sft.chat_template`).
"""

from __future__ import annotations

import json
from typing import Any

from trialbook.sft.messages import Message

Chunk = tuple[str, bool]

def tojson(value: Any) -> str:
    """The ``tojson`` filter of Hugging Face chat templates (no HTML escaping, non-ASCII kept)."""
    return json.dumps(value, ensure_ascii=False)


def openai_chunks(messages: list[Message], tools: list[dict[str, Any]] | None) -> list[Chunk]:
    """Plain-text chunks for GPT-style counts: role, content, reasoning, calls, and the tool list.

    The per-message framing tokens of OpenAI's chat format are not text; the caller adds them
    (:data:`OPENAI_TOKENS_PER_MESSAGE`), as in OpenAI's published counting recipe.
    """
    chunks: list[Chunk] = []
    if tools:
        chunks.append((tojson(tools), True))
    for message in messages:
        role = message["role"]
        parts = [role, "\n", message.get("content") or ""]
        reasoning = message.get("reasoning_content")
        if reasoning:
            parts.append("\n" + reasoning)
        for call in message.get("tool_calls") or ():
            function = call["function"]
            arguments = function["arguments"]
            parts.append("\n" + function["name"] + "\n" + (arguments if isinstance(arguments, str) else tojson(arguments)))
        chunks.append(("".join(parts), role in ("system", "user")))
    return chunks


OPENAI_TOKENS_PER_MESSAGE = 3
OPENAI_TOKENS_PER_REPLY = 3
