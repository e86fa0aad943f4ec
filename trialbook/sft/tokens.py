"""Offline token counting with real tokenizers, chosen by name (:func:`get_tokenizer`).

Nothing is fetched at run time, and no package is installed only to carry data files:

* ``o200k_base`` (default), ``cl100k_base``: OpenAI's encodings, from the
  rank files LiteLLM ships in its package (its offline tiktoken cache), run by tiktoken's
  engine. Examples are counted with OpenAI's recipe: the text of each message plus 3
  framing tokens per message and 3 for the reply.
* ``hf:PATH`` or ``hf:ORG/NAME``: exact counts for any model with a Hugging Face
  ``tokenizer.json``, given as a directory or file, or found in the local Hugging Face cache
  (``HF_HUB_CACHE``, ``HF_HOME/hub`` or ``~/.cache/huggingface/hub``). Each example is
  rendered with the model's own chat template (``chat_template.jinja`` or
  ``tokenizer_config.json``) in a sandboxed Jinja environment, as the model sees it, and
  counted by the ``tokenizers`` library. Qwen3 is an example: download its two tokenizer
  files and use ``hf:Qwen/Qwen3-8B`` (docs/sft.md).

Counting is batched: the uncached chunks of many examples go to the engine in one call.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from trialbook.errors import ConfigError
from trialbook.sft.messages import Message
from trialbook.sft.render import (
    OPENAI_TOKENS_PER_MESSAGE,
    OPENAI_TOKENS_PER_REPLY,
    Chunk,
    openai_chunks,
)

DEFAULT_TOKENIZER = "o200k_base"
HF_PREFIX = "hf:"
_CACHE_LIMIT = 50_000
#: Encodings whose rank files LiteLLM ships (file names are tiktoken's cache keys: sha1 of the URL).
OPENAI_ENCODINGS = ("cl100k_base", "o200k_base")
_ENCODINGS_URL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"


class Engine(ABC):
    """Counts tokens of raw strings in batches; added/special tokens in the text count as one."""

    @abstractmethod
    def count(self, texts: Sequence[str], threads: int = 1) -> list[int]:
        """Token count of each text."""


class TiktokenEngine(Engine):
    """tiktoken's Rust BPE over a given vocabulary (optionally NFC-normalising first)."""

    def __init__(self, encoding: Any, nfc: bool, specials: bool) -> None:
        self.encoding = encoding
        self.nfc = nfc
        self.allowed: Any = "all" if specials else set()

    def _prepare(self, texts: Sequence[str]) -> list[str]:
        """NFC-normalise when the vocabulary expects it (cheap check first)."""
        if not self.nfc:
            return list(texts)
        normal = unicodedata.is_normalized
        return [t if normal("NFC", t) else unicodedata.normalize("NFC", t) for t in texts]

    def count(self, texts: Sequence[str], threads: int = 1) -> list[int]:
        """Token count of each text, in ``threads`` threads when more than one."""
        prepared = self._prepare(texts)
        enc = self.encoding
        if threads > 1 and len(prepared) > 1:
            batches = enc.encode_batch(prepared, num_threads=threads, allowed_special=self.allowed, disallowed_special=())
            return [len(ids) for ids in batches]
        return [len(enc.encode(t, allowed_special=self.allowed, disallowed_special=())) for t in prepared]


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

    def __post_init__(self) -> None:
        self._cache: dict[str, int] = {}

    def count_texts(self, texts: Sequence[str], threads: int = 1) -> list[int]:
        """Token counts of raw strings, in one batch."""
        return self.engine.count(texts, threads)

    def count_examples(
        self, examples: Sequence[tuple[list[Message], list[dict[str, Any]] | None]], threads: int = 1
    ) -> list[int]:
        """Token count of each ``(messages, tools)`` example as rendered by this tokenizer's format.

        All chunks not already cached go to the engine in one batch (``threads`` > 1 lets it
        use several cores); prompt chunks (system, tools, user) are cached across calls.
        """
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


def _openai_ranks(name: str) -> dict[bytes, int]:
    """An OpenAI encoding's ranks (``base64-token rank`` per line) from LiteLLM's offline cache."""
    import base64

    key = hashlib.sha1(_ENCODINGS_URL.format(name).encode()).hexdigest()
    path = _litellm_tiktoken_dir() / key
    if not path.is_file():
        raise ConfigError(f"the {name} rank file is not in the installed litellm package ({path})")
    ranks = {}
    for line in path.read_bytes().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def _openai_counter(name: str) -> TokenCounter:
    """An OpenAI encoding in tiktoken's engine, with OpenAI's message-counting recipe."""
    import tiktoken

    encoding = tiktoken.Encoding(name, pat_str=_GPT_PATTERNS[name], mergeable_ranks=_openai_ranks(name),
                                 special_tokens=_GPT_SPECIALS[name])
    return TokenCounter(name, TiktokenEngine(encoding, nfc=False, specials=False), openai_chunks,
                        "openai message recipe", OPENAI_TOKENS_PER_MESSAGE, OPENAI_TOKENS_PER_REPLY)


# Special tokens of OpenAI's encodings (only needed to build them; GPT-style counts treat text as text).
_GPT_SPECIALS = {
    "cl100k_base": {
        "<|endoftext|>": 100257,
        "<|fim_prefix|>": 100258,
        "<|fim_middle|>": 100259,
        "<|fim_suffix|>": 100260,
        "<|endofprompt|>": 100276,
    },
    "o200k_base": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
}

# The pre-tokenisation regexes of OpenAI's encodings (as published with tiktoken).
_GPT_PATTERNS = {
    "cl100k_base": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
    "o200k_base": "|".join(
        [
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]
    ),
}


def hf_cache_dirs() -> list[Path]:
    """Where a Hugging Face model name is looked for, in order (never the network)."""
    dirs = []
    if os.environ.get("HF_HUB_CACHE"):
        dirs.append(Path(os.environ["HF_HUB_CACHE"]))
    if os.environ.get("HF_HOME"):
        dirs.append(Path(os.environ["HF_HOME"]) / "hub")
    dirs.append(Path.home() / ".cache" / "huggingface" / "hub")
    return list(dict.fromkeys(dirs))


def find_hf_tokenizer(spec: str) -> Path:
    """The ``tokenizer.json`` named by ``spec``: a file, a directory holding one, or ``org/name`` in the HF cache."""
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    if (path / "tokenizer.json").is_file():
        return path / "tokenizer.json"
    if "/" in spec and not spec.startswith(("/", ".", "~")):
        for cache in hf_cache_dirs():
            repo = cache / ("models--" + spec.replace("/", "--"))
            ref = repo / "refs" / "main"
            snapshots = [repo / "snapshots" / ref.read_text().strip()] if ref.is_file() else []
            snapshots += sorted((repo / "snapshots").glob("*")) if (repo / "snapshots").is_dir() else []
            for snap in snapshots:
                if (snap / "tokenizer.json").is_file():
                    return snap / "tokenizer.json"
        looked = ", ".join(str(c) for c in hf_cache_dirs())
        raise ConfigError(f"tokenizer hf:{spec}: no tokenizer.json for {spec} in the Hugging Face cache "
                          f"({looked}); download it first, e.g. huggingface-cli download {spec} "
                          "tokenizer.json tokenizer_config.json")
    raise ConfigError(f"tokenizer hf:{spec}: no tokenizer.json at {path}")


def chat_template_of(tokenizer_file: Path) -> str:
    """The model's chat template: ``chat_template.jinja`` or ``tokenizer_config.json``'s ``chat_template``."""
    folder = tokenizer_file.parent
    if (folder / "chat_template.jinja").is_file():
        return (folder / "chat_template.jinja").read_text(encoding="utf-8")
    config = folder / "tokenizer_config.json"
    if config.is_file():
        template = orjson.loads(config.read_bytes()).get("chat_template")
        if isinstance(template, list):  # named templates: the default one
            template = next((t.get("template") for t in template if t.get("name") == "default"), None)
        if isinstance(template, str) and template:
            return template
    raise ConfigError("no chat template next to the tokenizer (chat_template.jinja, or chat_template in "
                      "tokenizer_config.json): the count would not be what the model sees", folder)


def _hf_counter(spec: str) -> TokenCounter:
    """Exact counts for a Hugging Face tokenizer, examples rendered by its own chat template."""
    from trialbook.sft.chat_template import ChatTemplate

    path = find_hf_tokenizer(spec)
    template = ChatTemplate(chat_template_of(path))
    return TokenCounter(f"{HF_PREFIX}{spec}", HfEngine(path), template.chunks,
                        f"chat template of {path.parent.name}")


def tokenizer_names() -> list[str]:
    """Built-in names :func:`get_tokenizer` accepts (besides ``hf:PATH`` / ``hf:ORG/NAME``)."""
    return sorted(OPENAI_ENCODINGS)


@functools.cache
def _load(name: str) -> TokenCounter:
    """Build a counter once per process."""
    if name.startswith(HF_PREFIX):
        return _hf_counter(name[len(HF_PREFIX):])
    return _openai_counter(name)


def get_tokenizer(name: str = DEFAULT_TOKENIZER) -> TokenCounter:
    """The token counter called ``name`` (loaded once per process); a bad name is a :class:`ConfigError`."""
    if name in ("qwen3", "qwen3-hf"):
        raise ConfigError(f"tokenizer {name!r}: Qwen3's tokenizer is no longer bundled; download it "
                          "(huggingface-cli download Qwen/Qwen3-8B tokenizer.json tokenizer_config.json) "
                          "and use hf:Qwen/Qwen3-8B")
    if not name.startswith(HF_PREFIX) and name not in OPENAI_ENCODINGS:
        raise ConfigError(f"unknown tokenizer {name!r}; choose one of: {', '.join(tokenizer_names())}, "
                          "or hf:PATH / hf:ORG/NAME for a Hugging Face tokenizer")
    return _load(name)
