"""Writing the site's data files: JSON wrapped in a ``TB.put(key, ...)`` call, safely escaped.

Chromium refuses ``fetch()`` of ``file://`` URLs, so the page loads data by adding a
``<script src>`` per file; each file hands its JSON to the global ``TB.put``. The JSON is
made safe to embed anywhere JavaScript is parsed: ``<``, ``>`` and ``&`` become ``\\u003c``
``\\u003e`` ``\\u0026`` (no ``</script>`` or ``<!--`` can appear), and U+2028/U+2029 are
escaped (they end a line in older JavaScript parsers). Those characters only ever occur
inside JSON strings, so the replacement keeps the value identical.

Files are written atomically (temp file + rename, no fsync: the site is derived and can be
rebuilt) and only when their content changed, so an unchanged page keeps its mtime.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import orjson

from trialbook import secrets

_ESCAPES = {
    b"<": b"\\u003c", b">": b"\\u003e", b"&": b"\\u0026",
    "\u2028".encode(): b"\\u2028", "\u2029".encode(): b"\\u2029",
}
_KEY_RE = re.compile(r"^[a-z]+(/[0-9a-z._-]+)*$")


def js_json(obj: Any) -> bytes:
    """``obj`` as JSON bytes that are also a safe JavaScript expression (see module docstring)."""
    raw = orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS, default=_default)
    for char, escaped in _ESCAPES.items():  # bytes.replace: several times faster than one regex pass
        if char in raw:
            raw = raw.replace(char, escaped)
    return raw


def _default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def data_script(key: str, obj: Any) -> bytes:
    """The content of the data file for ``key``: ``TB.put("key", <json>);``.

    Keys are built by the site builder from fixed words and hex ids only; anything else is a bug.
    """
    if not _KEY_RE.match(key):
        raise ValueError(f"bad data key {key!r}")
    return b'TB.put("' + key.encode() + b'",' + js_json(obj) + b");\n"


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` atomically unless it already holds exactly that; True if written."""
    data = secrets.current().bytes(data)
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return True


def write_data(data_dir: Path, key: str, obj: Any) -> bool:
    """Write the data file of ``key`` under ``data_dir`` (``<key>.js``); True if it changed."""
    return write_if_changed(data_dir / f"{key}.js", data_script(key, obj))
