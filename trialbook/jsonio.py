"""JSON, JSONL and text I/O with the house rules: atomic writes, locked appends, tolerant reads.

Writers never leave a half file a reader would trust: content goes to a temp file in the
same directory and is renamed over the target. JSONL readers stop at a truncated last line
(a job still being written) with a warning instead of failing.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from trialbook import secrets
from trialbook.errors import SourceError
from trialbook.flock import locked


def dumps(obj: Any, *, indent: bool = True, sort_keys: bool = True) -> bytes:
    """Serialise ``obj`` to JSON bytes (pretty and key-sorted by default, for stable diffs)."""
    opts = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    if indent:
        opts |= orjson.OPT_INDENT_2
    if sort_keys:
        opts |= orjson.OPT_SORT_KEYS
    return orjson.dumps(obj, default=_default, option=opts)


def _default(obj: Any) -> Any:
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def atomic_write_bytes(path: str | Path, data: bytes, *, scrub: bool = True) -> None:
    """Write ``data`` to ``path`` via a temp file and rename, so readers see old or new, never half.

    The run's secret values (:mod:`trialbook.secrets`) never reach the file, unless ``scrub``
    is false (rewriting a file the user wrote, such as config.yaml, that holds them on purpose).
    """
    with atomic_writer(path) as fh:
        fh.write(secrets.current().bytes(data) if scrub else data)


@contextlib.contextmanager
def atomic_writer(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file that replaces ``path`` when the block ends without error (temp file, fsync,
    rename), for outputs written piece by piece. The caller scrubs what it writes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates 0600 files: keep the mode of the file being replaced (a user's 0600
        # config.yaml stays 0600), else the mode a plain open() would give (0666 & ~umask).
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    """The process umask (read by setting and restoring it; cached after the first call)."""
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0)
        os.umask(_UMASK)
    return _UMASK


_UMASK: int | None = None


def atomic_write_text(path: str | Path, text: str, *, scrub: bool = True) -> None:
    """Text variant of :func:`atomic_write_bytes` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"), scrub=scrub)


def write_json(path: str | Path, obj: Any, *, indent: bool = True) -> None:
    """Atomically write ``obj`` as JSON (with a trailing newline)."""
    atomic_write_bytes(path, dumps(obj, indent=indent) + b"\n")


def read_json(path: str | Path) -> Any:
    """Read a JSON file; a missing or malformed file raises :class:`SourceError` naming it."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SourceError("file not found", path, not_found=True) from None
    except IsADirectoryError:
        raise SourceError("expected a file, found a directory", path) from None
    except OSError as exc:
        raise SourceError(f"cannot read: {exc.strerror}", path) from None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise SourceError(f"invalid JSON: {exc}", path) from None


def append_jsonl(path: str | Path, record: Any) -> None:
    """Append one JSON line under an exclusive lock, so concurrent writers never interleave."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = secrets.current().bytes(orjson.dumps(record, default=_default, option=orjson.OPT_SERIALIZE_NUMPY)) + b"\n"
    with open(path, "ab") as fh, locked(fh):
        fh.write(line)
        fh.flush()


def jsonl_values(data: bytes, path: str | Path, *, partial_last_line: bool = True,
                 on_invalid: Callable[[int, str], None] | None = None) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` of each non-blank line of JSONL ``data`` read from ``path``.

    The one JSONL parser of the code base. With ``partial_last_line``, a malformed *last*
    line without a trailing newline is a write in progress: it is skipped with a warning.
    Any other malformed line raises :class:`SourceError` with its number, or, when
    ``on_invalid`` is given (logs that mix in plain text), is passed to it and skipped.
    """
    lines = data.split(b"\n")
    last = len(lines) - 1
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            yield number, orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            if partial_last_line and number - 1 == last:
                warnings.warn(f"{path}: line {number} is truncated (file still being written?); "
                              "read up to the last full line", stacklevel=3)
                return
            problem = f"line {number}: invalid JSON: {exc}"
            if on_invalid is None:
                raise SourceError(problem, path) from None
            on_invalid(number, problem)


def iter_jsonl(path: str | Path) -> Iterator[Any]:
    """The records of a JSONL file (:func:`jsonl_values`' rules: a write in progress is not an error)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SourceError("file not found", path, not_found=True) from None
    except OSError as exc:
        raise SourceError(f"cannot read: {exc.strerror}", path) from None
    for _, value in jsonl_values(data, path):
        yield value
