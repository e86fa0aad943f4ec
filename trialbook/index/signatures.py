"""How the index knows that something changed without reading it: file signatures and watched dirs.

* A file's signature is ``size:mtime_ns`` (``-`` when missing). A file modified within
  :data:`RACY_MARGIN_NS` of the moment a read began may have changed during that read (or
  within the file system's timestamp granularity), so its signature is stored as ``racy``,
  which never matches: the next run looks at it again.
* A watched directory is stored as ``[dir, mtime_ns, digest of its entry names]``. When its
  mtime moved but its names did not (an atomic rewrite, a summary written beside a job), the
  listing is still valid; only new or vanished names count as a change.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable

import orjson

#: A path modified less than this before a read began may have changed during it (mtime granularity).
RACY_MARGIN_NS = 1_000_000_000
RACY = "racy"

#: Files trialbook derives beside a job; writing them does not change what the job is.
DERIVED_NAMES = frozenset({"summary.json", "summary.md"})


def _stat_sig(path: str, since_ns: int, margin_ns: int, known: dict[str, tuple[int, int]] | None = None) -> str:
    got = known.get(path) if known else None
    if got is None:
        try:
            st = os.stat(path)
        except OSError:
            return "-"
        got = (st.st_size, st.st_mtime_ns)
    if since_ns and got[1] >= since_ns - margin_ns:
        return RACY
    return f"{got[0]}:{got[1]}"


def files_sig(files: Iterable[str], since_ns: int = 0, margin_ns: int | None = None,
              known: dict[str, tuple[int, int]] | None = None) -> str:
    """Comma-joined signatures of ``files``; ``racy`` for those modified after ``since_ns`` - margin.

    ``since_ns`` = 0 (when comparing against a stored signature) skips the racy check. ``known``:
    ``path -> (size, mtime_ns)`` a reader took from the ``fstat`` of the bytes it read (no stat
    again, and the signature describes exactly what was read).
    """
    margin = RACY_MARGIN_NS if margin_ns is None else margin_ns
    return ",".join(_stat_sig(f, since_ns, margin, known) for f in files)


def dir_digest(d: str) -> str:
    """Hash of the visible entry names of ``d`` (hidden temp files and derived summaries left out)."""
    try:
        with os.scandir(d) as it:
            names = sorted(e.name for e in it if not e.name.startswith(".") and e.name not in DERIVED_NAMES)
    except OSError:
        return ""
    return hashlib.sha1("\n".join(names).encode("utf-8", "surrogateescape")).hexdigest()


def watch_json(dirs: Iterable[str], since_ns: int, margin_ns: int | None = None) -> str:
    """JSON ``[[dir, mtime_ns, digest], ...]`` of directories just listed; one modified since
    ``since_ns`` is stored as ``[dir, 0, ""]`` so the next run lists it again."""
    margin = RACY_MARGIN_NS if margin_ns is None else margin_ns
    out: list[list] = []
    for d in sorted(set(dirs)):
        try:
            m = os.stat(d).st_mtime_ns
        except OSError:
            out.append([d, -1, ""])
            continue
        out.append([d, 0, ""] if m >= since_ns - margin else [d, m, dir_digest(d)])
    return orjson.dumps(out).decode()


def check_watch(watch: str, since_ns: int) -> tuple[bool, str | None]:
    """(listing changed?, refreshed watch JSON to store, or None when nothing moved)."""
    entries = orjson.loads(watch or "[]")
    if not entries:
        return True, None
    refreshed, moved = [], False
    for d, m, digest in entries:
        try:
            m2 = os.stat(d).st_mtime_ns
        except OSError:
            return True, None
        if m2 == m:
            refreshed.append([d, m, digest])
            continue
        if not digest or dir_digest(d) != digest:
            return True, None
        moved = True
        refreshed.append([d, 0 if m2 >= since_ns - RACY_MARGIN_NS else m2, digest])
    return False, orjson.dumps(refreshed).decode() if moved else None


def holding_dirs(top: str, paths: Iterable[str]) -> set[str]:
    """``top`` and every directory between it and each of ``paths`` (where a new entry can appear)."""
    out = {top}
    prefix = top.rstrip(os.sep) + os.sep
    for p in paths:
        d = os.path.dirname(p)
        while d not in out and d.startswith(prefix):
            out.add(d)
            d = os.path.dirname(d)
        if not p.startswith(prefix):  # a trial outside its job dir: watch its own parent
            out.add(os.path.dirname(p))
    return out
