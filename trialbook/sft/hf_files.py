"""Finding a Hugging Face model's tokenizer files on this machine, never on the network.

``hf:PATH`` names a ``tokenizer.json`` file, a directory holding one, or a downloaded repository
(``models--Org--Name``); ``hf:NAME`` (``Org/Name`` or a bare ``name``) is looked up in the local
Hugging Face cache: ``HF_HUB_CACHE``, ``HF_HOME/hub``, ``~/.cache/huggingface/hub``, each
holding ``models--Org--Name/snapshots/<revision>/``. Next to the tokenizer we read the chat
template (``chat_template.jinja`` or ``tokenizer_config.json``'s ``chat_template``) and the
named special tokens (``bos_token``, ``eos_token``, ...) templates write.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from trialbook.errors import ConfigError

TOKENIZER_FILE = "tokenizer.json"
TEMPLATE_FILE = "chat_template.jinja"
CONFIG_FILE = "tokenizer_config.json"
SPECIALS_FILE = "special_tokens_map.json"
#: The named special tokens transformers hands to a chat template (its ``special_tokens_map``).
SPECIAL_TOKEN_NAMES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
DOWNLOAD_HINT = "hf download {name} tokenizer.json tokenizer_config.json"


@dataclass(frozen=True)
class HfTokenizerFiles:
    """What counting with a Hugging Face tokenizer needs: the tokenizer and its chat template."""

    tokenizer: Path
    template: str
    template_file: Path
    special_tokens: dict[str, str] = field(default_factory=dict)


def hf_cache_dirs() -> list[Path]:
    """Where a model name is looked for, in order (the Hugging Face hub cache locations)."""
    dirs = []
    if os.environ.get("HF_HUB_CACHE"):
        dirs.append(Path(os.environ["HF_HUB_CACHE"]).expanduser())
    if os.environ.get("HF_HOME"):
        dirs.append(Path(os.environ["HF_HOME"]).expanduser() / "hub")
    dirs.append(Path.home() / ".cache" / "huggingface" / "hub")
    return list(dict.fromkeys(dirs))


def _in_repo(repo: Path) -> Path | None:
    """The ``tokenizer.json`` of a downloaded repository: the ``main`` revision first, else the newest."""
    snapshots = repo / "snapshots"
    if not snapshots.is_dir():
        return None
    ref = repo / "refs" / "main"
    candidates = [snapshots / ref.read_text(encoding="utf-8").strip()] if ref.is_file() else []
    candidates += sorted(snapshots.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
    for snapshot in candidates:
        if (snapshot / TOKENIZER_FILE).is_file():
            return snapshot / TOKENIZER_FILE
    return None


def _looks_like_path(spec: str) -> bool:
    """True for specs that cannot be a model name (absolute, ``./``, ``~``, a file name, two slashes)."""
    return spec.startswith(("/", ".", "~")) or spec.endswith(".json") or spec.count("/") > 1


def find_hf_tokenizer(spec: str) -> Path:
    """The ``tokenizer.json`` that ``hf:spec`` names; a one-line :class:`ConfigError` says what was looked for."""
    if not spec.strip():
        raise ConfigError("tokenizer hf: needs a path or a model name, e.g. hf:Qwen/Qwen3-8B")
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        found = path / TOKENIZER_FILE if (path / TOKENIZER_FILE).is_file() else _in_repo(path)
        if found is None:
            raise ConfigError(f"tokenizer hf:{spec}: no {TOKENIZER_FILE} in this directory (nor in "
                              "snapshots/ below it)")
        return found
    if _looks_like_path(spec):
        raise ConfigError(f"tokenizer hf:{spec}: no such file or directory")
    caches = hf_cache_dirs()
    for cache in caches:
        found = _in_repo(cache / ("models--" + spec.replace("/", "--")))
        if found is not None:
            return found
    looked = ", ".join(str(c / ("models--" + spec.replace("/", "--"))) for c in caches)
    raise ConfigError(f"tokenizer hf:{spec}: not a file or directory here, and no {TOKENIZER_FILE} for "
                      f"model {spec} in the Hugging Face cache (looked in {looked}); download it first: "
                      + DOWNLOAD_HINT.format(name=spec))


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object file, or a one-line error naming it."""
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read it as JSON: {exc}", path) from None
    if not isinstance(data, dict):
        raise ConfigError("expected a JSON object", path)
    return data


def _token_text(value: Any) -> str | None:
    """A special token as written in tokenizer_config.json: a string or an AddedToken object."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def special_tokens_of(folder: Path) -> dict[str, str]:
    """The named special tokens (``bos_token``, ``eos_token``, ...) a chat template may write."""
    tokens: dict[str, str] = {}
    for name in (SPECIALS_FILE, CONFIG_FILE):  # tokenizer_config.json wins
        if (folder / name).is_file():
            data = _read_json(folder / name)
            for key in SPECIAL_TOKEN_NAMES:
                text = _token_text(data.get(key))
                if text is not None:
                    tokens[key] = text
    return tokens


def chat_template_of(tokenizer_file: Path) -> tuple[str, Path]:
    """The model's chat template and the file it came from (``chat_template.jinja`` first)."""
    folder = tokenizer_file.parent
    if (folder / TEMPLATE_FILE).is_file():
        return (folder / TEMPLATE_FILE).read_text(encoding="utf-8"), folder / TEMPLATE_FILE
    if (folder / CONFIG_FILE).is_file():
        template = _read_json(folder / CONFIG_FILE).get("chat_template")
        if isinstance(template, list):  # named templates: the default one
            template = next((t.get("template") for t in template
                             if isinstance(t, dict) and t.get("name") == "default"), None)
        if isinstance(template, str) and template:
            return template, folder / CONFIG_FILE
    raise ConfigError(f"no chat template next to the tokenizer ({TEMPLATE_FILE}, or chat_template in "
                      f"{CONFIG_FILE}): the count would not be what the model sees", folder)


def hf_tokenizer_files(spec: str) -> HfTokenizerFiles:
    """Everything ``hf:spec`` needs, found locally (see the module docstring)."""
    tokenizer = find_hf_tokenizer(spec)
    template, template_file = chat_template_of(tokenizer)
    return HfTokenizerFiles(tokenizer, template, template_file, special_tokens_of(tokenizer.parent))
