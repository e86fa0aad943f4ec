"""Offline token counting with real tokenizers, chosen by name (:func:`get_tokenizer`).

Nothing is fetched at run time, and no package is installed only to carry data files:

* ``o200k_base`` (default), ``cl100k_base`` (and ``p50k_base``/``p50k_edit``): OpenAI's
  encodings, from the rank files LiteLLM ships in its package (its offline tiktoken cache),
  checked against their published SHA-256 and run by tiktoken's engine. Examples are counted
  with OpenAI's recipe: the text of each message plus 3 framing tokens per message and 3 for
  the reply.
* ``hf:PATH`` or ``hf:NAME``: exact counts for any model with a Hugging Face
  ``tokenizer.json``, given as a directory or file, or found in the local Hugging Face cache
  (:mod:`trialbook.sft.hf_files`). Each example is rendered with the model's own chat
  template in a sandboxed Jinja environment (:mod:`trialbook.sft.chat_template`), as the
  model sees it, and counted by the ``tokenizers`` library. Qwen3 is an example: download its two tokenizer
  files and use ``hf:Qwen/Qwen3-8B`` (docs/sft.md).

Counting is batched: the uncached chunks of many examples go to the engine in one call.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trialbook.errors import ConfigError
from trialbook.sft.hf_files import DOWNLOAD_HINT, hf_tokenizer_files
from trialbook.sft.messages import Message, dumps_json
from trialbook.sft.render import (
    OPENAI_TOKENS_PER_MESSAGE,
    OPENAI_TOKENS_PER_REPLY,
    Chunk,
    openai_chunks,
)
from trialbook.sft.token_cache import TokenCache, text_key

DEFAULT_TOKENIZER = "o200k_base"
HF_PREFIX = "hf:"
_CACHE_LIMIT = 50_000
_ENCODINGS_URL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"


class Engine(ABC):
    """Counts tokens of raw strings in batches; added/special tokens in the text count as one."""

    @abstractmethod
    def count(self, texts: Sequence[str], threads: int = 1) -> list[int]:
        """Token count of each text."""


class TiktokenEngine(Engine):
    """tiktoken's Rust BPE over an OpenAI encoding; special-token text counts as ordinary text."""

    def __init__(self, encoding: Any) -> None:
        self.encoding = encoding

    def count(self, texts: Sequence[str], threads: int = 1) -> list[int]:
        """Token count of each text, in ``threads`` threads when more than one."""
        enc = self.encoding
        if threads > 1 and len(texts) > 1:
            return [len(ids) for ids in enc.encode_ordinary_batch(list(texts), num_threads=threads)]
        return [len(enc.encode_ordinary(t)) for t in texts]


class HfEngine(Engine):
    """The ``tokenizers`` library with a ``tokenizer.json`` file (no special tokens added)."""

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(path))
        self._batch = getattr(self.tokenizer, "encode_batch_fast", self.tokenizer.encode_batch)

    def count(self, texts: Sequence[str], threads: int = 1) -> list[int]:
        """Token count of each text via ``encode_batch``."""
        return [len(e) for e in self._batch(list(texts), add_special_tokens=False)]


@dataclass
class TokenCounter:
    """A named tokenizer plus the chat format examples are rendered in before counting."""

    name: str
    engine: Engine
    render: Callable[[list[Message], list[dict[str, Any]] | None], list[Chunk]]
    rendering: str
    per_message: int = 0
    per_example: int = 0
    #: What a persistent count is keyed by besides the example: the name, plus for a Hugging Face
    #: tokenizer a hash of its files (the same name may later point at other files).
    fingerprint: str = ""

    def __post_init__(self) -> None:
        self._cache: dict[str, int] = {}
        self.fingerprint = self.fingerprint or f"{self.name}\0{self.rendering}"

    def count_texts(self, texts: Sequence[str], threads: int = 1) -> list[int]:
        """Token counts of raw strings, in one batch."""
        return self.engine.count(texts, threads)

    def count_examples(
        self, examples: Sequence[tuple[list[Message], list[dict[str, Any]] | None]], threads: int = 1,
        store: TokenCache | None = None,
    ) -> list[int]:
        """Token count of each ``(messages, tools)`` example as rendered by this tokenizer's format.

        All chunks not already cached go to the engine in one batch (``threads`` > 1 lets it
        use several cores); prompt chunks (system, tools, user) are cached across calls, and
        every example's count in ``store`` (persistent, by content hash) when given: a known
        example is not even rendered.
        """
        if store is not None:
            return self._count_with_store(examples, threads, store)
        cache = self._cache
        rendered = [self.render(messages, tools) for messages, tools in examples]
        pending: dict[str, None] = {}
        for chunks in rendered:
            for text, _ in chunks:
                if text not in cache:
                    pending[text] = None
        fresh = dict(zip(pending, self.engine.count(list(pending), threads), strict=True))
        totals = []
        for (messages, _), chunks in zip(examples, rendered, strict=True):
            total = self.per_example + self.per_message * len(messages)
            for text, cacheable in chunks:
                count = cache.get(text)
                if count is None:
                    count = fresh[text]
                    if cacheable:
                        if len(cache) >= _CACHE_LIMIT:
                            cache.clear()
                        cache[text] = count
                total += count
            totals.append(total)
        return totals

    def _count_with_store(self, examples: Sequence[tuple[list[Message], list[dict[str, Any]] | None]],
                          threads: int, store: TokenCache) -> list[int]:
        """Counts of ``examples``: those ``store`` knows, the rest counted (then added to it)."""
        keys = [text_key(self.fingerprint, dumps_json([messages, tools]).decode()) for messages, tools in examples]
        known = store.lookup(keys)
        todo = [i for i, k in enumerate(keys) if k not in known]
        counted = self.count_examples([examples[i] for i in todo], threads) if todo else []
        store.add((keys[i], n) for i, n in zip(todo, counted, strict=True))
        out = [known.get(k, 0) for k in keys]
        for i, n in zip(todo, counted, strict=True):
            out[i] = n
        return out

    def count_example(self, messages: list[Message], tools: list[dict[str, Any]] | None) -> int:
        """Token count of one example (prefer :meth:`count_examples` for many)."""
        return self.count_examples([(messages, tools)])[0]

    def render_text(self, messages: list[Message], tools: list[dict[str, Any]] | None) -> str:
        """The full text that is counted for an example."""
        return "".join(text for text, _ in self.render(messages, tools))


def _litellm_tiktoken_dir() -> Path:
    """The directory of tiktoken rank files inside the installed LiteLLM package (not imported)."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("litellm is not installed: it carries the OpenAI encodings' rank files")
    return Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"


@dataclass(frozen=True)
class OpenAiEncoding:
    """How to build one OpenAI encoding: its rank file, that file's SHA-256, regex and special tokens."""

    ranks: str
    sha256: str
    pattern: str
    special_tokens: dict[str, int]

    @property
    def file_name(self) -> str:
        """The rank file's name in a tiktoken cache directory: the SHA-1 of its download URL."""
        return hashlib.sha1(_ENCODINGS_URL.format(self.ranks).encode()).hexdigest()


# The pre-tokenisation regexes of OpenAI's encodings (as published with tiktoken).
_R50K_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
_CL100K_PATTERN = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
_O200K_PATTERN = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])
_EOT = "<|endoftext|>"
_FIM = {"<|fim_prefix|>": 0, "<|fim_middle|>": 1, "<|fim_suffix|>": 2}

#: Every OpenAI encoding we can build; those whose rank file the installed LiteLLM ships are
#: available (:func:`openai_encodings`). Special tokens only complete the encoding: GPT-style
#: counts treat all text as text.
OPENAI_ENCODINGS: dict[str, OpenAiEncoding] = {
    "r50k_base": OpenAiEncoding("r50k_base", "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",
                                _R50K_PATTERN, {_EOT: 50256}),
    "p50k_base": OpenAiEncoding("p50k_base", "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069",
                                _R50K_PATTERN, {_EOT: 50256}),
    "p50k_edit": OpenAiEncoding("p50k_base", "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069",
                                _R50K_PATTERN, {_EOT: 50256, **{k: 50281 + v for k, v in _FIM.items()}}),
    "cl100k_base": OpenAiEncoding("cl100k_base", "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
                                  _CL100K_PATTERN, {_EOT: 100257, **{k: 100258 + v for k, v in _FIM.items()},
                                                    "<|endofprompt|>": 100276}),
    "o200k_base": OpenAiEncoding("o200k_base", "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
                                 _O200K_PATTERN, {_EOT: 199999, "<|endofprompt|>": 200018}),
}


def openai_encodings() -> list[str]:
    """The OpenAI encodings whose rank files the installed LiteLLM package ships, sorted."""
    try:
        folder = _litellm_tiktoken_dir()
    except ConfigError:
        return []
    return sorted(name for name, enc in OPENAI_ENCODINGS.items() if (folder / enc.file_name).is_file())


def _openai_ranks(encoding: OpenAiEncoding) -> dict[bytes, int]:
    """An encoding's ranks (``base64-token rank`` per line) from LiteLLM's offline tiktoken cache."""
    path = _litellm_tiktoken_dir() / encoding.file_name
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != encoding.sha256:
        raise ConfigError(f"the {encoding.ranks} rank file in the litellm package is not the published one "
                          "(SHA-256 differs); reinstall litellm", path)
    ranks = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def _openai_counter(name: str) -> TokenCounter:
    """An OpenAI encoding in tiktoken's engine, with OpenAI's message-counting recipe."""
    import tiktoken

    spec = OPENAI_ENCODINGS[name]
    encoding = tiktoken.Encoding(name, pat_str=spec.pattern, mergeable_ranks=_openai_ranks(spec),
                                 special_tokens=spec.special_tokens)
    return TokenCounter(name, TiktokenEngine(encoding), openai_chunks,
                        "openai message recipe", OPENAI_TOKENS_PER_MESSAGE, OPENAI_TOKENS_PER_REPLY)


def _hf_counter(spec: str) -> TokenCounter:
    """Exact counts for a Hugging Face tokenizer, examples rendered by its own chat template."""
    from trialbook.sft.chat_template import ChatTemplate

    files = hf_tokenizer_files(spec)
    template = ChatTemplate(files.template, files.special_tokens)
    name, rendering = f"{HF_PREFIX}{spec}", f"chat template of {files.template_file}"
    digest = hashlib.sha256(files.tokenizer.read_bytes())
    digest.update(files.template.encode())
    digest.update(repr(sorted(files.special_tokens.items())).encode())
    return TokenCounter(name, HfEngine(files.tokenizer), template.chunks, rendering,
                        fingerprint=f"{name}\0{rendering}\0{digest.hexdigest()}")


def tokenizer_names() -> list[str]:
    """Built-in names :func:`get_tokenizer` accepts here (besides ``hf:PATH`` / ``hf:NAME``)."""
    return openai_encodings()


@functools.cache
def _load(name: str) -> TokenCounter:
    """Build a counter once per process."""
    if name.startswith(HF_PREFIX):
        return _hf_counter(name[len(HF_PREFIX):])
    return _openai_counter(name)


def get_tokenizer(name: str = DEFAULT_TOKENIZER) -> TokenCounter:
    """The token counter called ``name`` (loaded once per process); a bad name is a :class:`ConfigError`."""
    if name.startswith(HF_PREFIX):
        return _load(name)
    choices = f"{', '.join(tokenizer_names()) or 'none (litellm is not installed)'}, or hf:PATH / hf:NAME " \
              "for a Hugging Face tokenizer"
    if name in ("qwen3", "qwen3-hf"):
        raise ConfigError(f"tokenizer {name!r}: Qwen3's tokenizer is not bundled; download it "
                          f"({DOWNLOAD_HINT.format(name='Qwen/Qwen3-8B')}) and use hf:Qwen/Qwen3-8B")
    if name not in OPENAI_ENCODINGS:
        raise ConfigError(f"unknown tokenizer {name!r}; choose one of: {choices}")
    if name not in tokenizer_names():
        raise ConfigError(f"tokenizer {name!r}: the installed litellm package does not ship its rank file "
                          f"({_litellm_tiktoken_dir() / OPENAI_ENCODINGS[name].file_name}); available: {choices}")
    return _load(name)
