"""Offline tokenizers: OpenAI encodings from litellm's files, and any Hugging Face tokenizer.json.

The Hugging Face path is checked against the reference implementations on a real tokenizer
trained here: rendering equals transformers' ``apply_chat_template``, counts equal the
``tokenizers`` library's, and a model name is found in a Hugging Face cache (no network).
"""

from __future__ import annotations

import json
import os
import sysconfig
from pathlib import Path

import pytest
from test_sft_cases import CASES

from trialbook.errors import ConfigError
from trialbook.sft import tokens
from trialbook.sft.chat_template import ChatTemplate
from trialbook.sft.messages import training_messages, trajectory_to_messages
from trialbook.sft.tokens import get_tokenizer, tokenizer_names

os.environ.setdefault("HF_HUB_OFFLINE", "1")

EDGE_TEXTS = [
    "",
    "hello world",
    "  leading and trailing spaces   \n\n\t\n  ",
    "<|im_start|>user\nhi<|im_end|>\n<tool_call>\n{}\n</tool_call><think>x</think>",
    "ünïcödé ✓ 日本語のテキスト 🎉🎉 Ω≈ç√∫",
    "drwxr-xr-x  2 root root 4096 Nov 21 17:20 .\n" * 20,
    "x = [1, 22, 333, 4444, 55555]; y = {'a': 1e-9, \"b\": None}",
    "\r\n\r\n   \r\n",
]

# A ChatML chat template written for these tests (system/user/assistant/tool turns, tool calls, tools).
CHATML = (
    "{% if tools %}<|im_start|>system\n# Tools\n{% for tool in tools %}{{ tool | tojson }}\n{% endfor %}"
    "<|im_end|>\n{% endif %}"
    "{% for message in messages %}<|im_start|>{{ message.role }}\n"
    "{% if message.reasoning_content %}<think>{{ message.reasoning_content }}</think>\n{% endif %}"
    "{{ message.content or '' }}"
    "{% for call in message.tool_calls or [] %}<tool_call>{{ {'name': call.function.name, "
    "'arguments': call.function.arguments} | tojson }}</tool_call>{% endfor %}<|im_end|>\n{% endfor %}"
)


def _corpus(limit: int = 30) -> list[str]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(stdlib.glob("*.py"))[::5][:limit]
    return [f.read_text(encoding="utf-8", errors="replace") for f in files] + EDGE_TEXTS


@pytest.fixture(scope="module")
def hf_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Hugging Face cache with ``acme/tiny``: a byte-level BPE tokenizer trained here, and CHATML."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=3000, special_tokens=["<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_corpus(60), trainer=trainer)
    cache = tmp_path_factory.mktemp("hf") / "hub"
    snap = cache / "models--acme--tiny" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    tok.save(str(snap / "tokenizer.json"))
    (snap / "tokenizer_config.json").write_text(json.dumps({
        "chat_template": CHATML, "bos_token": None, "eos_token": "<|im_end|>",
        "tokenizer_class": "PreTrainedTokenizerFast"}))
    (cache / "models--acme--tiny" / "refs").mkdir()
    (cache / "models--acme--tiny" / "refs" / "main").write_text("abc123")
    return cache


def _examples() -> list[tuple[list, list | None]]:
    out = []
    for case in ("parallel_calls", "reasoning", "no_tools", "tool_errors", "copied_context"):
        conv = trajectory_to_messages(CASES[case]())
        out.append((training_messages(conv.messages), conv.tools))
    return out


def test_names_and_errors() -> None:
    assert tokenizer_names() == ["cl100k_base", "o200k_base"] and tokens.DEFAULT_TOKENIZER == "o200k_base"
    with pytest.raises(ConfigError, match="unknown tokenizer 'llama9'.*hf:PATH"):
        get_tokenizer("llama9")
    with pytest.raises(ConfigError, match="hf:Qwen/Qwen3-8B"):
        get_tokenizer("qwen3")


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_openai_encodings_equal_tiktoken_offline(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import tiktoken
    import tiktoken.registry

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tokens._litellm_tiktoken_dir()))
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})  # load afresh from that cache
    reference = tiktoken.get_encoding(name)
    corpus = _corpus(8)
    assert get_tokenizer(name).count_texts(corpus) == [len(reference.encode_ordinary(t)) for t in corpus]


def test_hf_by_name_in_the_cache_and_by_path(hf_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(hf_cache))
    found = tokens.find_hf_tokenizer("acme/tiny")
    assert found == hf_cache / "models--acme--tiny" / "snapshots" / "abc123" / "tokenizer.json"
    assert tokens.find_hf_tokenizer(str(found.parent)) == found and tokens.find_hf_tokenizer(str(found)) == found
    with pytest.raises(ConfigError) as err:
        tokens.find_hf_tokenizer("acme/missing")
    assert "\n" not in str(err.value) and str(hf_cache) in str(err.value) and "huggingface-cli download" in str(err.value)
    with pytest.raises(ConfigError, match="no chat template next to the tokenizer"):
        tokens.chat_template_of(Path(__file__))


def test_hf_rendering_equals_transformers_and_counts_equal_tokenizers(hf_cache: Path) -> None:
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    folder = hf_cache / "models--acme--tiny" / "snapshots" / "abc123"
    reference = PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"))
    reference.chat_template = CHATML
    counter = get_tokenizer(f"hf:{folder}")
    raw = Tokenizer.from_file(str(folder / "tokenizer.json"))
    for messages, tools in _examples():
        ours = ChatTemplate(CHATML).render(messages, tools)
        theirs = reference.apply_chat_template(messages, tools=tools, tokenize=False)
        assert ours == theirs
        expected = len(raw.encode(ours, add_special_tokens=False).ids)
        assert counter.count_example(messages, tools) == expected > 20
    assert counter.name == f"hf:{folder}" and counter.rendering == "chat template of abc123"


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
def test_example_counts_are_stable_across_batches_threads_and_cache(name: str) -> None:
    counter = get_tokenizer(name)
    examples = _examples()
    first = counter.count_examples(examples)
    assert first == counter.count_examples(examples, threads=2)
    assert first == [counter.count_example(m, t) for m, t in examples]
    assert all(n > 20 for n in first)


def test_gpt_example_count_follows_the_openai_recipe() -> None:
    counter = get_tokenizer("cl100k_base")
    messages = [{"role": "user", "content": "hello world"}, {"role": "assistant", "content": "hi"}]
    text_tokens = sum(counter.count_texts(["user\nhello world", "assistant\nhi"]))
    assert counter.count_example(messages, None) == text_tokens + 2 * 3 + 3
