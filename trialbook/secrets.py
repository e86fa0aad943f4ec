"""The secret values of a run, and their removal from every byte trialbook writes or prints.

The values to scrub are exactly the credentials a config hands out (:func:`config_secrets`):
the values of the environment variables named by a variant's ``api_key_env``, the values at
the config's ``secrets:`` paths, every ``${VAR}`` expansion, and literal values under keys
that name a credential (``api_key``, ``password``, ``authorization``, ...). They are captured
once per run into a process-wide set (:func:`register`) that the writers consult: atomic
file writes, JSONL appends, the session log, the files a sandbox left, and the CLI's own
output. Nothing else is touched: a value is never redacted because of the *name* of an
environment variable (``TOKENIZERS_PARALLELISM=false`` does not make ``false`` a secret).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REDACTED = "***REDACTED***"
#: Shorter values are not scrubbed: they would match ordinary text ("1", "yes").
MIN_SECRET_LENGTH = 6
#: Keys whose values are credentials (structural: their values are secrets, and such keys are
#: dropped from recorded HTTP requests). Token *counts* (``max_tokens``) and ``tokenizer`` are not.
CREDENTIAL_KEY = re.compile(
    r"(^|[_-])(api[_-]?key|authorization|proxy[_-]?authorization|password|passwd|secret|"
    r"client[_-]?secret|access[_-]?token|auth[_-]?token|session[_-]?token|bearer|cookie)($|[_-])",
    re.IGNORECASE,
)
_VAR_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class SecretSet:
    """Known secret values; replaces each in text and bytes (longest first)."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.values: list[str] = []
        self._bytes: list[bytes] = []
        self.add(values)

    def add(self, values: Iterable[str]) -> None:
        merged = {*self.values, *(v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_LENGTH)}
        self.values = sorted(merged, key=len, reverse=True)
        self._bytes = [v.encode("utf-8") for v in self.values]

    def __bool__(self) -> bool:
        return bool(self.values)

    @property
    def longest(self) -> int:
        return len(self._bytes[0]) if self._bytes else 0

    def text(self, text: str) -> str:
        for value in self.values:
            if value in text:
                text = text.replace(value, REDACTED)
        return text

    def bytes(self, data: bytes) -> bytes:
        for value in self._bytes:
            if value in data:
                data = data.replace(value, REDACTED.encode())
        return data

    def data(self, obj: Any) -> Any:
        """A copy of JSON-like data with secret values replaced in every string (keys included)."""
        if not self:
            return obj
        if isinstance(obj, dict):
            return {self.text(k) if isinstance(k, str) else k: self.data(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.data(v) for v in obj]
        if isinstance(obj, str):
            return self.text(obj)
        return obj


_CURRENT = SecretSet()


def current() -> SecretSet:
    """The secrets registered in this process (empty until a config is loaded)."""
    return _CURRENT


def register(values: Iterable[str]) -> None:
    """Add values to the process-wide set every writer scrubs."""
    _CURRENT.add(values)


def reset() -> None:
    """Forget every registered value (tests; a long-lived process between runs)."""
    global _CURRENT
    _CURRENT = SecretSet()


def config_secrets(raw_config: dict[str, Any], environ: dict[str, str] | None = None) -> list[str]:
    """The secret values a block config hands out (see the module docstring)."""
    env = os.environ if environ is None else environ
    found: set[str] = set()
    for variant in raw_config.get("variants") or []:
        if isinstance(variant, dict) and isinstance(variant.get("api_key_env"), str):
            value = env.get(variant["api_key_env"])
            if value:
                found.add(value)

    def walk(node: Any, key: str | None) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, str(k))
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif isinstance(node, str):
            for name in _VAR_REF.findall(node):
                if env.get(name):
                    found.add(env[name])
            if key and CREDENTIAL_KEY.search(key) and not key.endswith("_env") and not _VAR_REF.search(node):
                found.add(node)

    walk({k: v for k, v in raw_config.items() if k != "status"}, None)
    for dotted in raw_config.get("secrets") or []:
        value = _at_path(raw_config, str(dotted).split("."))
        if isinstance(value, str):
            found.add(_VAR_REF.sub(lambda m: env.get(m.group(1), m.group(0)), value))
    return sorted(v for v in found if len(v) >= MIN_SECRET_LENGTH)


def _at_path(node: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    return node


def scrub_file(path: Path, secrets: SecretSet | None = None, chunk: int = 1024 * 1024) -> bool:
    """Replace secret values inside a file we own, streaming (constant memory); True when it changed.

    Only regular files are touched (links are not followed).
    """
    secrets = secrets if secrets is not None else _CURRENT
    if not secrets or path.is_symlink() or not path.is_file():
        return False
    keep = max(secrets.longest - 1, 0)
    tmp = path.with_name(f".{path.name}.scrub")
    changed = False
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        buf = b""
        while block := src.read(chunk):
            joined = buf + block
            buf = secrets.bytes(joined)
            changed |= buf != joined
            # keep the last bytes back: a secret may be cut by the block boundary
            if len(buf) > keep:
                dst.write(buf[: len(buf) - keep])
                buf = buf[len(buf) - keep:]
        dst.write(buf)
    if changed:
        os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        os.replace(tmp, path)
    else:
        os.unlink(tmp)
    return changed


class ScrubbingStream:
    """A text stream that replaces the run's secret values before writing (the CLI's stdout/stderr)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(_CURRENT.text(text) if _CURRENT else text)
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
