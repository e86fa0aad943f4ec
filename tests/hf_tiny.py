"""A real, small Hugging Face tokenizer for tests: a byte-level BPE trained here, plus a chat template.

No network: the vocabulary is learned from the Python standard library's own sources.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sysconfig
from pathlib import Path
from typing import Any

# A ChatML chat template in the style of Qwen's (system/user/assistant/tool turns, reasoning,
# tool calls, a tool list), written for these tests.
CHATML = (
    "{% if tools %}<|im_start|>system\n# Tools\n{% for tool in tools %}{{ tool | tojson }}\n{% endfor %}"
    "<|im_end|>\n{% endif %}"
    "{% for message in messages %}<|im_start|>{{ message.role }}\n"
    "{% if message.reasoning_content %}<think>{{ message.reasoning_content }}</think>\n{% endif %}"
    "{{ message.content or '' }}"
    "{% for call in message.tool_calls or [] %}<tool_call>{{ {'name': call.function.name, "
    "'arguments': call.function.arguments} | tojson }}</tool_call>{% endfor %}<|im_end|>\n{% endfor %}"
)

# A template that writes the tokenizer's named special tokens (as Llama's and Mistral's do), marks
# the assistant's part with {% generation %} and formats the tool list with tojson's options.
WITH_SPECIALS = (
    "{{ bos_token }}{% if tools %}[TOOLS]{{ tools | tojson(indent=2, separators=(',', ': ')) }}[/TOOLS]{% endif %}"
    "{% for message in messages %}{% if message.role == 'assistant' %}{% generation %}"
    "[A]{{ message.content or '' }}{% for call in message.tool_calls or [] %}"
    "[CALL]{{ call.function.name }} {{ call.function.arguments }}{% endfor %}{{ eos_token }}{% endgeneration %}"
    "{% else %}[{{ message.role | upper }}]{{ message.content or '' }}{% endif %}{% endfor %}"
)

SPECIAL_TOKENS = ["<|im_start|>", "<|im_end|>", "<s>", "</s>"]


def corpus(limit: int = 30) -> list[str]:
    """Some real text: every fifth module of the standard library, up to ``limit`` files."""
    files = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))[::5][:limit]
    return [f.read_text(encoding="utf-8", errors="replace") for f in files]


@functools.cache
def _tokenizer_json() -> str:
    """The serialised tokenizer (trained once per process)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=3000, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus(40), trainer=trainer)
    return tok.to_str()


def write_tokenizer(folder: Path, *, template: str | None = CHATML, template_file: bool = False,
                    config: dict[str, Any] | None = None) -> Path:
    """Write tokenizer.json and tokenizer_config.json (with the template, or the template in
    chat_template.jinja when ``template_file``) into ``folder``; returns the tokenizer.json path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.json").write_text(_tokenizer_json(), encoding="utf-8")
    cfg: dict[str, Any] = {"tokenizer_class": "PreTrainedTokenizerFast", **(config or {})}
    if template is not None and not template_file:
        cfg["chat_template"] = template
    if template is not None and template_file:
        (folder / "chat_template.jinja").write_text(template, encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg), encoding="utf-8")
    return folder / "tokenizer.json"


def write_cached_model(cache: Path, name: str, revision: str = "abc", **kwargs: Any) -> Path:
    """``name`` ("org/model") as the Hugging Face hub cache lays it out under ``cache``."""
    repo = cache / ("models--" + name.replace("/", "--"))
    snapshot = repo / "snapshots" / revision
    path = write_tokenizer(snapshot, **kwargs)
    (repo / "blobs").mkdir(exist_ok=True)
    for file in list(snapshot.iterdir()):  # as the hub stores them: snapshot files link to blobs
        blob = repo / "blobs" / hashlib.sha256(file.read_bytes()).hexdigest()
        file.rename(blob)
        file.symlink_to(os.path.relpath(blob, snapshot))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    return path
