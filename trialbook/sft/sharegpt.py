"""im.jsonl record -> LLaMA-Factory ShareGPT example (``lf.json``) and its ``dataset_info.json`` entry.

LLaMA-Factory's sharegpt converter drops an example unless, after an optional leading
``system`` turn, the turns alternate strictly: ``human``/``observation`` at even positions,
``gpt``/``function_call`` at odd positions, ending on the assistant side. So:

* Only the trainable messages are used (:func:`~trialbook.sft.messages.training_messages`):
  ShareGPT has no per-turn loss mask and would train on every ``gpt`` turn.
* Leading system messages become the ``system`` field (joined by a blank line); a system
  message later in the conversation becomes prompt-side text (a ``human`` turn).
* ``user`` -> ``human``, ``tool`` -> ``observation``, assistant with tool calls ->
  ``function_call``, other assistant messages -> ``gpt``.
* Consecutive turns of the same side are merged. Several tool results become one
  ``observation`` joined by ``\\n</tool_response>\\n<tool_response>\\n`` (LLaMA-Factory's own
  OpenAI converter does the same, so Qwen-style templates show one block per result);
  ``observation`` mixed with ``human`` becomes one ``human`` turn joined by blank lines.
  Assistant turns merge into one ``function_call`` holding every call, or one ``gpt``.
* A ``function_call`` value is JSON ``{"name", "arguments"}`` (``arguments`` an object), and
  for parallel calls a JSON list of those. ShareGPT has no place for visible text next to
  calls, so that text is dropped here, exactly as LLaMA-Factory's own OpenAI converter does,
  and counted (``assistant_text_dropped``); im.jsonl keeps it.
* Reasoning (when kept) is prefixed as ``<think>\\n...\\n</think>\\n\\n``, LLaMA-Factory's
  default ``thought_words``, which its reasoning templates and function formatter recognise.
* A conversation opening on the assistant side gets an empty ``human`` turn first (the
  prompt was the system message alone); trailing ``human``/``observation`` turns are trimmed.
* ``tools`` is the JSON string of the OpenAI tool list, ``""`` when there are none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trialbook.sft.messages import Message, dumps_json, loads_json, training_messages

THINK_OPEN = "<think>\n"
THINK_CLOSE = "\n</think>\n\n"
TOOL_RESPONSE_JOIN = "\n</tool_response>\n<tool_response>\n"

ROLE_TAG = "from"
CONTENT_TAG = "value"
PROMPT_SIDE = ("human", "observation")
ANSWER_SIDE = ("gpt", "function_call")


@dataclass(slots=True)
class ShareGptNotes:
    """What the conversion had to change, summed into lf.stats.json."""

    turns_merged: int = 0
    assistant_text_dropped: int = 0
    empty_human_inserted: int = 0
    trailing_prompt_trimmed: int = 0
    untrained_removed: int = 0

    def add(self, other: ShareGptNotes) -> None:
        """Accumulate another example's notes into this one."""
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        """The notes as a plain mapping."""
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(slots=True)
class _Turn:
    """One sharegpt turn being built: role, texts to join, reasoning, calls."""

    role: str
    texts: list[str] = field(default_factory=list)
    thoughts: list[str] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    dropped_text: bool = False


def _arguments(text: str, parsed: dict[int, tuple[str, Any]]) -> Any:
    """A call's arguments as a value: the one the string was made from when known, else parsed."""
    known = parsed.get(id(text))
    if known is not None and known[0] is text:
        return known[1]
    return loads_json(text or "{}")


def _turn_for(message: Message, parsed: dict[int, tuple[str, Any]]) -> _Turn:
    """The sharegpt turn of one im message (assistant with calls -> function_call)."""
    role = message["role"]
    content = message.get("content") or ""
    if role == "assistant":
        thought = message.get("reasoning_content")
        turn = _Turn("gpt", thoughts=[thought] if thought else [])
        calls = message.get("tool_calls")
        if calls:
            turn.role = "function_call"
            turn.calls = [
                {"name": c["function"]["name"], "arguments": _arguments(c["function"]["arguments"], parsed)}
                for c in calls
            ]
            turn.dropped_text = bool(content)
        else:
            turn.texts.append(content)
        return turn
    return _Turn("observation" if role == "tool" else "human", texts=[content])


def _merge(into: _Turn, turn: _Turn) -> None:
    """Fold ``turn`` into the same-side turn before it, so roles keep alternating."""
    if into.role in PROMPT_SIDE:
        if into.role != turn.role:
            into.role = "human"
        into.texts.extend(turn.texts)
        return
    into.thoughts.extend(turn.thoughts)
    if turn.role == "function_call" or into.role == "function_call":
        # Only gpt turns carry texts; merged into calls, that visible text has no place left.
        lost = any(into.texts) or any(turn.texts)
        into.dropped_text = into.dropped_text or turn.dropped_text or lost
        into.texts = []
        into.role = "function_call"
        into.calls.extend(turn.calls)
    else:
        into.texts.extend(turn.texts)


def _value(turn: _Turn) -> str:
    """The ``value`` string of a finished turn."""
    if turn.role == "observation":
        return TOOL_RESPONSE_JOIN.join(turn.texts)
    if turn.role == "human":
        return "\n\n".join(turn.texts)
    prefix = ""
    if turn.thoughts:
        prefix = THINK_OPEN + "\n\n".join(turn.thoughts) + THINK_CLOSE
    if turn.role == "gpt":
        return prefix + "\n\n".join(turn.texts)
    payload: Any = turn.calls[0] if len(turn.calls) == 1 else turn.calls
    return prefix + dumps_json(payload).decode()


def to_sharegpt(messages: list[Message], tools: list[dict[str, Any]],
                parsed_arguments: dict[int, tuple[str, Any]] | None = None) -> tuple[dict[str, Any], ShareGptNotes]:
    """Build one LLaMA-Factory sharegpt example ``{conversations, system, tools}`` from im messages.

    ``parsed_arguments`` (:attr:`ImConversation.parsed_arguments`) spares parsing the tool-call
    arguments back; the example is the same with or without it.
    """
    parsed = parsed_arguments or {}
    notes = ShareGptNotes()
    trainable = training_messages(messages)
    notes.untrained_removed = len(messages) - len(trainable)
    index = 0
    system_parts = []
    while index < len(trainable) and trainable[index]["role"] == "system":
        system_parts.append(trainable[index].get("content") or "")
        index += 1
    turns: list[_Turn] = []
    for message in trainable[index:]:
        turn = _turn_for(message, parsed)
        if turns and (turns[-1].role in PROMPT_SIDE) == (turn.role in PROMPT_SIDE):
            _merge(turns[-1], turn)
            notes.turns_merged += 1
        else:
            turns.append(turn)
    while turns and turns[-1].role in PROMPT_SIDE:
        turns.pop()
        notes.trailing_prompt_trimmed += 1
    if turns and turns[0].role in ANSWER_SIDE:
        turns.insert(0, _Turn("human", texts=[""]))
        notes.empty_human_inserted += 1
    notes.assistant_text_dropped = sum(1 for t in turns if t.dropped_text)
    conversations = [{ROLE_TAG: t.role, CONTENT_TAG: _value(t)} for t in turns]
    example = {
        "conversations": conversations,
        "system": "\n\n".join(system_parts),
        "tools": dumps_json(tools).decode() if tools else "",
    }
    return example, notes


def dataset_info_entry(name: str, file_name: str) -> dict[str, Any]:
    """The ``dataset_info.json`` mapping registering ``file_name`` as sharegpt dataset ``name``."""
    return {
        name: {
            "file_name": file_name,
            "formatting": "sharegpt",
            "columns": {"messages": "conversations", "system": "system", "tools": "tools"},
            "tags": {
                "role_tag": ROLE_TAG,
                "content_tag": CONTENT_TAG,
                "user_tag": "human",
                "assistant_tag": "gpt",
                "observation_tag": "observation",
                "function_tag": "function_call",
                "system_tag": "system",
            },
        }
    }
