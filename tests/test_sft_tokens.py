"""Offline tokenizers: OpenAI encodings from litellm's files, and any Hugging Face tokenizer.json.

The OpenAI encodings are checked against tiktoken's own loading of the same files and against
published token ids, with the network cut. The Hugging Face path is checked against the
reference implementations on a real tokenizer trained here (tests/hf_tiny.py): the rendering
and the token count equal transformers' ``apply_chat_template``, counts equal the
``tokenizers`` library's, and a model name is found in a Hugging Face cache laid out as the
hub lays it out (no network).
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest
from hf_tiny import CHATML, WITH_SPECIALS, corpus, write_cached_model, write_tokenizer
from test_sft_cases import CASES

from trialbook.config import SftConversionConfig
from trialbook.errors import ConfigError
from trialbook.sft import ConvertOptions, convert
from trialbook.sft.chat_template import ChatTemplate
from trialbook.sft.hf_files import find_hf_tokenizer, hf_tokenizer_files
from trialbook.sft.inputs import SftInput
from trialbook.sft.job import options_from_config
from trialbook.sft.messages import training_messages, trajectory_to_messages
from trialbook.sft.tokens import (
    DEFAULT_TOKENIZER,
    _litellm_tiktoken_dir,
    get_tokenizer,
    tokenizer_names,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")

EDGE_TEXTS = [
    "",
    "hello world",
    "  leading and trailing spaces   \n\n\t\n  ",
    "<|im_start|>user\nhi<|im_end|>\n<tool_call>\n{}\n</tool_call><think>x</think><|endoftext|>",
    "ünïcödé ✓ 日本語のテキスト 🎉🎉 Ω≈ç√∫",
    "drwxr-xr-x  2 root root 4096 Nov 21 17:20 .\n" * 20,
    "x = [1, 22, 333, 4444, 55555]; y = {'a': 1e-9, \"b\": None}",
    "\r\n\r\n   \r\n",
]


@pytest.fixture(scope="module")
def hf_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Hugging Face hub cache holding ``acme/tiny`` (CHATML) and ``acme/special`` (WITH_SPECIALS)."""
    cache = tmp_path_factory.mktemp("hf") / "hub"
    write_cached_model(cache, "acme/tiny", "abc123")
    write_cached_model(cache, "acme/special", "def456", template=WITH_SPECIALS, template_file=True,
                       config={"bos_token": {"content": "<s>", "__type": "AddedToken"}, "eos_token": "</s>"})
    return cache


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to resolve a host name or open a connection fails the test."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _examples() -> list[tuple[list, list | None]]:
    out = []
    for case in ("parallel_calls", "reasoning", "no_tools", "tool_errors", "copied_context"):
        conv = trajectory_to_messages(CASES[case]())
        out.append((training_messages(conv.messages), conv.tools))
    return out


# --- OpenAI encodings ---------------------------------------------------------------------

def test_names_default_and_errors() -> None:
    names = tokenizer_names()
    assert {"cl100k_base", "o200k_base"} <= set(names) and DEFAULT_TOKENIZER == "o200k_base"
    with pytest.raises(ConfigError, match=r"unknown tokenizer 'llama9'; choose one of: cl100k_base, .*hf:PATH / hf:NAME"):
        get_tokenizer("llama9")
    with pytest.raises(ConfigError, match=r"hf download Qwen/Qwen3-8B tokenizer.json tokenizer_config.json\) and use hf:Qwen/Qwen3-8B"):
        get_tokenizer("qwen3")


def test_an_encoding_litellm_does_not_ship_names_the_available_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trialbook.sft import tokens

    real = _litellm_tiktoken_dir()
    cl100k = tokens.OPENAI_ENCODINGS["cl100k_base"].file_name
    shutil.copy(real / cl100k, tmp_path / cl100k)
    monkeypatch.setattr(tokens, "_litellm_tiktoken_dir", lambda: tmp_path)
    assert tokenizer_names() == ["cl100k_base"]
    with pytest.raises(ConfigError) as err:
        get_tokenizer("o200k_base")
    assert str(err.value).startswith("tokenizer 'o200k_base': the installed litellm package does not ship")
    assert "available: cl100k_base, or hf:PATH / hf:NAME" in str(err.value) and "\n" not in str(err.value)
    (tmp_path / cl100k).write_bytes((real / cl100k).read_bytes()[:-100])  # damaged: not the published file
    with pytest.raises(ConfigError, match="rank file in the litellm package is not the published one"):
        tokens._openai_counter("cl100k_base")


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base", "p50k_base"])
def test_openai_encodings_equal_tiktoken_loading_the_same_files(name: str, monkeypatch: pytest.MonkeyPatch,
                                                                 no_network: None) -> None:
    import tiktoken
    import tiktoken.registry

    if name not in tokenizer_names():
        pytest.skip(f"this litellm does not ship {name}")
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(_litellm_tiktoken_dir()))
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})  # load afresh, from that cache only
    reference = tiktoken.get_encoding(name)
    texts = corpus(8) + EDGE_TEXTS
    assert get_tokenizer(name).count_texts(texts) == [len(reference.encode_ordinary(t)) for t in texts]
    assert get_tokenizer(name).count_texts(texts, threads=2) == [len(reference.encode_ordinary(t)) for t in texts]


def test_openai_encodings_load_offline_and_give_the_published_ids(no_network: None) -> None:
    from trialbook.sft import tokens

    published = {"cl100k_base": [15339, 1917], "o200k_base": [24912, 2375], "p50k_base": [31373, 995]}
    for name, ids in published.items():
        if name not in tokenizer_names():
            continue
        counter = tokens._openai_counter(name)  # built now, not from the per-process cache
        assert counter.engine.encoding.encode_ordinary("hello world") == ids, name
        assert counter.count_texts(["hello world"]) == [2]
    assert get_tokenizer("cl100k_base").count_texts(["tiktoken is great!"]) == [6]


def test_gpt_example_count_follows_the_openai_recipe() -> None:
    counter = get_tokenizer("cl100k_base")
    messages = [{"role": "user", "content": "hello world"}, {"role": "assistant", "content": "hi"}]
    text_tokens = sum(counter.count_texts(["user\nhello world", "assistant\nhi"]))
    assert text_tokens == 7  # "user" "\n" "hello" " world" + "assistant" "\n" "hi"
    assert counter.count_example(messages, None) == text_tokens + 2 * 3 + 3


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
def test_example_counts_are_stable_across_batches_threads_and_cache(name: str) -> None:
    counter = get_tokenizer(name)
    examples = _examples()
    first = counter.count_examples(examples)
    assert first == counter.count_examples(examples, threads=2)  # now with cached prompt chunks
    assert first == [counter.count_example(m, t) for m, t in examples]
    assert all(n > 20 for n in first)


# --- Hugging Face tokenizers ----------------------------------------------------------------

def test_hf_names_are_found_in_the_cache_and_paths_anywhere(hf_cache: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_CACHE", str(hf_cache))
    monkeypatch.delenv("HF_HOME", raising=False)
    snap = hf_cache / "models--acme--tiny" / "snapshots" / "abc123"
    assert find_hf_tokenizer("acme/tiny") == snap / "tokenizer.json"
    assert find_hf_tokenizer(str(snap)) == snap / "tokenizer.json"
    assert find_hf_tokenizer(str(snap / "tokenizer.json")) == snap / "tokenizer.json"
    assert find_hf_tokenizer(str(hf_cache / "models--acme--tiny")) == snap / "tokenizer.json"  # a repo dir
    # A bare name (no organisation), found through HF_HOME/hub when HF_HUB_CACHE is not set.
    home = tmp_path / "hfhome"
    bare = write_cached_model(home / "hub", "tiny")
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(home))
    assert find_hf_tokenizer("tiny") == bare
    # refs/main wins over a newer snapshot without a tokenizer; without refs, the newest with one.
    (home / "hub" / "models--tiny" / "snapshots" / "zzz").mkdir()
    assert find_hf_tokenizer("tiny") == bare
    (home / "hub" / "models--tiny" / "refs" / "main").unlink()
    assert find_hf_tokenizer("tiny") == bare
    # A plain directory, template in chat_template.jinja, relative to the current directory.
    plain = write_tokenizer(tmp_path / "plain", template_file=True)
    assert find_hf_tokenizer("plain").resolve() == plain.resolve()
    files = hf_tokenizer_files("plain")
    assert files.template == CHATML and files.template_file.name == "chat_template.jinja"


def test_hf_errors_are_one_line_and_name_what_was_looked_for(hf_cache: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_CACHE", str(hf_cache))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    cases = {
        "hf:acme/missing": [f"{hf_cache}/models--acme--missing", f"{tmp_path}/home/hub/models--acme--missing",
                            "no tokenizer.json for model acme/missing in the Hugging Face cache",
                            "hf download acme/missing tokenizer.json tokenizer_config.json"],
        f"hf:{tmp_path}/nowhere/tokenizer.json": [f"tokenizer hf:{tmp_path}/nowhere/tokenizer.json: no such file"],
        "hf:./nowhere": ["tokenizer hf:./nowhere: no such file or directory"],
        "hf:": ["tokenizer hf: needs a path or a model name"],
    }
    (tmp_path / "empty").mkdir()
    cases[f"hf:{tmp_path}/empty"] = [f"tokenizer hf:{tmp_path}/empty: no tokenizer.json in this directory"]
    write_tokenizer(tmp_path / "untemplated", template=None)
    cases["hf:untemplated"] = ["untemplated: no chat template next to the tokenizer (chat_template.jinja, or "
                               "chat_template in tokenizer_config.json)"]
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "tokenizer.json").write_text("{}")
    (tmp_path / "broken" / "tokenizer_config.json").write_text("[not json")
    cases["hf:broken"] = ["broken/tokenizer_config.json: cannot read it as JSON"]
    for spec, parts in cases.items():
        with pytest.raises(ConfigError) as err:
            get_tokenizer(spec)
        message = str(err.value)
        assert "\n" not in message, message
        for part in parts:
            assert part in message, (spec, message)


@pytest.mark.parametrize("model", ["acme/tiny", "acme/special"])
def test_hf_counts_equal_transformers_and_tokenizers(model: str, hf_cache: Path, monkeypatch: pytest.MonkeyPatch,
                                                     no_network: None) -> None:
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    monkeypatch.setenv("HF_HUB_CACHE", str(hf_cache))
    folder = find_hf_tokenizer(model).parent
    reference = AutoTokenizer.from_pretrained(str(folder))  # a local directory: no hub access
    raw = Tokenizer.from_file(str(folder / "tokenizer.json"))
    counter = get_tokenizer(f"hf:{model}")
    files = hf_tokenizer_files(model)
    examples = _examples()
    counts = counter.count_examples(examples)
    for (messages, tools), count in zip(examples, counts, strict=True):
        ours = ChatTemplate(files.template, files.special_tokens).render(messages, tools)
        assert ours == reference.apply_chat_template(messages, tools=tools, tokenize=False)
        ids = reference.apply_chat_template(messages, tools=tools, tokenize=True)
        ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
        assert count == len(ids) == len(raw.encode(ours, add_special_tokens=False).ids) > 20
    assert counts == counter.count_examples(examples, threads=2)
    assert counter.name == f"hf:{model}" and counter.rendering == f"chat template of {files.template_file}"
    if model == "acme/special":  # the named special tokens are written, and each is one token
        text = counter.render_text(*examples[0])
        assert text.startswith("<s>") and text.count("</s>") == sum(m["role"] == "assistant" for m in examples[0][0])
        assert counter.count_texts(["<s></s>"]) == [2]


def test_conversion_counts_with_an_hf_tokenizer_and_says_which(hf_cache: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(hf_cache))
    counter = get_tokenizer("hf:acme/tiny")
    inputs = []
    for i, case in enumerate(("parallel_calls", "reasoning", "no_tools")):
        inputs.append(SftInput(id=f"j/{case}", job="j", task=case, variant="v", attempt=1, score=1.0, resolved=True,
                               layout="native", trial_path=f"/t/{i}", trajectory=CASES[case]()))
    result = convert(inputs, tmp_path, ConvertOptions(tokenizer="hf:acme/tiny"), "ds")
    tokens = result.stats["tokens"]
    expected = [counter.count_example(*ex) for ex in _examples()[:3]]
    assert tokens["tokenizer"] == "hf:acme/tiny" and tokens["total"] == sum(expected) and tokens["count"] == 3
    assert tokens["rendering"].startswith("chat template of ") and tokens["rendering"].endswith("tokenizer_config.json")
    assert result.stats["options"]["tokenizer"] == "hf:acme/tiny"


def test_config_tokenizer_paths_are_relative_to_the_block(tmp_path: Path) -> None:
    block = tmp_path / "block"
    write_tokenizer(block / "tokenizers" / "tiny")
    cfg = SftConversionConfig(tokenizer="hf:tokenizers/tiny")
    assert options_from_config(cfg, block).tokenizer == f"hf:{(block / 'tokenizers' / 'tiny').resolve()}"
    assert options_from_config(cfg, block, tokenizer="cl100k_base").tokenizer == "cl100k_base"  # --tokenizer wins
    for kept in ("hf:Qwen/Qwen3-8B", "o200k_base", f"hf:{tmp_path}/x"):  # a name, an encoding, an absolute path
        assert options_from_config(SftConversionConfig(tokenizer=kept), block).tokenizer == kept
    assert options_from_config(SftConversionConfig(), block).tokenizer == DEFAULT_TOKENIZER
