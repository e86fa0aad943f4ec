"""Store URLs (``s3://bucket/prefix``, any fsspec URL) and the object keys under them.

Only this module turns a URL into a root and a key into a relative path, and it refuses
what could escape a root: ``..``, absolute keys, empty or control-character components.
A key read from a store is untrusted (the bucket may be someone else's), so every key a
mirror writes locally passes :func:`safe_relpath` first.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from trialbook.errors import ConfigError, SourceError

_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://(.*)$")
#: Option names that hold credentials (refused in config.yaml: they come from the environment).
_CREDENTIAL_OPTION = re.compile(
    r"(^|_)(key|secret|token|password|passwd|credentials?|anon_key|account_key|sas_token|"
    r"connection_string|profile)($|_)", re.IGNORECASE,
)
#: Protocols that are local files: the root is an absolute path.
LOCAL_PROTOCOLS = frozenset({"file", "local"})


def credential_option(name: str) -> bool:
    """True when a storage option's name says it carries a credential (``key``, ``secret``, ...)."""
    return bool(_CREDENTIAL_OPTION.search(name)) and name not in {"key_prefix"}


def check_component(part: str, what: str) -> str | None:
    """Why ``part`` is not a safe single path component (None when it is)."""
    if part in {"", ".", ".."}:
        return f"{what} has an empty, '.' or '..' component"
    if "\\" in part:
        return f"{what} holds a backslash"
    if any(ord(c) < 32 or c == "\x7f" for c in part):
        return f"{what} holds a control character"
    return None


def safe_relpath(key: str, what: str = "object key") -> str:
    """``key`` checked as a relative path of '/'-separated safe components; raises SourceError."""
    if key.startswith("/"):
        raise SourceError(f"{what} {key!r} refused: it is an absolute path")
    for part in key.split("/"):
        problem = check_component(part, what)
        if problem:
            raise SourceError(f"{what} {key!r} refused: {problem}")
    return key


@dataclass(frozen=True)
class StoreURL:
    """A parsed store URL: ``protocol`` and ``root`` (the path fsspec uses, no trailing '/')."""

    protocol: str
    root: str

    @classmethod
    def parse(cls, url: str) -> StoreURL:
        """Validate ``url``; a one-line ConfigError says what is wrong."""
        m = _SCHEME.match(url.strip())
        if not m:
            raise ConfigError(f"store {url!r} is not a URL: write s3://bucket/prefix or another fsspec URL "
                              "(file:///abs/path for a local directory)")
        protocol, rest = m.group(1), m.group(2)
        if "\0" in rest or "?" in rest or "#" in rest:
            raise ConfigError(f"store {url!r}: no query, fragment or NUL byte allowed")
        if protocol in LOCAL_PROTOCOLS:
            if not rest.startswith("/"):
                raise ConfigError(f"store {url!r}: a {protocol}:// store needs an absolute path (file:///abs/path)")
            parts = [p for p in rest.split("/") if p]
            for part in parts:
                problem = check_component(part, "store path")
                if problem:
                    raise ConfigError(f"store {url!r}: {problem}")
            return cls(protocol, "/" + "/".join(parts))
        parts = rest.rstrip("/").split("/")
        if not parts[0]:
            raise ConfigError(f"store {url!r}: the bucket (or container) name is missing")
        for part in parts:
            problem = check_component(part, "store path")
            if problem:
                raise ConfigError(f"store {url!r}: {problem}")
        return cls(protocol, "/".join(parts))

    def __str__(self) -> str:
        return f"{self.protocol}://{self.root}"

    def key(self, *parts: str) -> str:
        """The fsspec path of ``root/parts...`` (each part a checked relative key)."""
        rel = "/".join(safe_relpath(p) for p in parts if p)
        return f"{self.root}/{rel}" if rel else self.root

    def child(self, *parts: str) -> StoreURL:
        """The URL of a prefix below this one."""
        return StoreURL(self.protocol, self.key(*parts))

    def relative(self, path: str) -> str:
        """``path`` (as fsspec lists it) relative to the root; SourceError when it is outside."""
        root = self.root.rstrip("/")
        clean = path.lstrip("/") if self.protocol not in LOCAL_PROTOCOLS else path
        base = root.lstrip("/") if self.protocol not in LOCAL_PROTOCOLS else root
        if not clean.startswith(base + "/"):
            raise SourceError(f"object key {path!r} refused: it is not under {self}")
        return safe_relpath(clean[len(base) + 1:])

    def cache_dir(self, cache_root: Path | None = None) -> Path:
        """Where this URL is mirrored locally: ``<cache>/<protocol>/<root>``."""
        base = cache_root if cache_root is not None else default_cache_root()
        return base / self.protocol / self.root.lstrip("/")


def is_url(target: str | os.PathLike[str] | None) -> bool:
    """True when ``target`` is written as a URL (``scheme://...``), not a local path."""
    return isinstance(target, str) and bool(_SCHEME.match(target))


def default_cache_root() -> Path:
    """``$TRIALBOOK_STORE_CACHE``, else ``$XDG_CACHE_HOME/trialbook/store`` (``~/.cache/...``)."""
    explicit = os.environ.get("TRIALBOOK_STORE_CACHE")
    if explicit:
        return Path(explicit).expanduser().absolute()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg).absolute() / "trialbook" / "store"
