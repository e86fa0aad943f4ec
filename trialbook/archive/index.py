"""``artifacts/index.yaml``: the block's run history, one entry per archive.

The index is rewritten whole (temp file + rename) under an exclusive ``flock``, so it is
always valid YAML and two archivers never lose each other's entry. An entry is written
only after its archive directory is in place, so an entry never points at an archive that
was not completely written.

Consistency rule (see :func:`list_archives`): the index is the truth for history. An
entry whose directory is missing (deleted by hand) is listed with ``present: false`` and a
warning; a ``run_NNN`` directory without an entry (a crash between the rename and the index
write, or an index restored from elsewhere) is listed as an orphan with a warning, using
its own ``metadata.yaml`` when it has one. Numbers of both kinds are never reused.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import yaml
from filelock import FileLock

from trialbook.archive.metadata import headline
from trialbook.errors import ConfigError
from trialbook.jsonio import atomic_write_text
from trialbook.layout.archive_paths import ArchivePaths, index_lock, parse_archive_number
from trialbook.layout.paths import BlockPaths
from trialbook.yamlio import load_yaml, read_yaml_or_none

INDEX_SCHEMA = "trialbook.archive-index/1"
_HEADER = (
    "# Run history of this block: one entry per archive under artifacts/archives/.\n"
    "# Appended by trialbook after every run (and by `trialbook archive`); do not edit.\n"
)


@contextmanager
def index_locked(block: BlockPaths) -> Iterator[None]:
    """Hold the block's exclusive archive lock (released by the OS if the process dies)."""
    path = index_lock(block)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path):
        yield


def read_index(block: BlockPaths) -> list[dict[str, Any]]:
    """The index entries (empty when there is no index yet); a malformed index is a ConfigError."""
    path = block.archive_index
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    try:
        data = load_yaml(text, path)
    except ConfigError as exc:
        raise ConfigError(f"{exc.message}; refusing to rewrite it", path) from None
    if data is None:
        return []
    runs = data.get("runs") if isinstance(data, dict) else None
    if not isinstance(runs, list) or not all(
        isinstance(r, dict) and isinstance(r.get("number"), int) for r in runs
    ):
        raise ConfigError("expected a mapping with a `runs:` list of entries that each have a "
                          "`number`; refusing to rewrite it", path)
    return runs


def write_index(block: BlockPaths, runs: list[dict[str, Any]]) -> None:
    """Atomically replace index.yaml with ``runs`` (sorted by number). Call under :func:`index_locked`."""
    ordered = sorted(runs, key=lambda r: r["number"])
    body = yaml.safe_dump({"schema": INDEX_SCHEMA, "runs": ordered}, sort_keys=False,
                          default_flow_style=False, allow_unicode=True)
    atomic_write_text(block.archive_index, _HEADER + body)


def archive_dirs(block: BlockPaths) -> dict[int, ArchivePaths]:
    """Every ``run_NNN`` directory by number (temp directories of archives in progress excluded)."""
    if not block.archives.is_dir():
        return {}
    out = {}
    for p in block.archives.iterdir():
        n = parse_archive_number(p.name)
        if n is not None and p.is_dir():
            out[n] = ArchivePaths(p)
    return out


def read_metadata(archive: ArchivePaths) -> dict[str, Any] | None:
    """An archive's metadata.yaml (None when missing or unreadable)."""
    data = read_yaml_or_none(archive.metadata)
    return data if isinstance(data, dict) else None


@dataclass
class ArchiveListing:
    """The block's archive history, reconciled with the archive directories."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def list_archives(block: BlockPaths) -> ArchiveListing:
    """Index entries plus orphan directories, sorted by number, with a warning per inconsistency."""
    listing = ArchiveListing()
    runs = read_index(block)
    dirs = archive_dirs(block)
    indexed: set[int] = set()
    for entry in runs:
        n = entry["number"]
        if n in indexed:
            listing.warnings.append(f"index.yaml has two entries numbered {n}; both are listed")
        indexed.add(n)
        present = n in dirs
        if not present:
            listing.warnings.append(f"index entry {n} ({entry.get('run_id')}): archive directory "
                                    f"{entry.get('archive')} is missing")
        listing.entries.append({**entry, "present": present, "orphan": False})
    for n, paths in sorted(dirs.items()):
        if n in indexed:
            continue
        meta = read_metadata(paths)
        what = "incomplete, no metadata.yaml" if meta is None else f"run {meta.get('run_id')}"
        listing.warnings.append(f"archive {paths.dir.name} has no index entry ({what}); "
                                "listed as an orphan")
        listing.entries.append(orphan_entry(n, paths, meta))
    listing.entries.sort(key=lambda e: e["number"])
    return listing


def orphan_entry(number: int, paths: ArchivePaths, meta: dict[str, Any] | None) -> dict[str, Any]:
    """A listing row for an archive directory the index does not know, from its own metadata."""
    meta = meta or {}
    return {
        "number": number,
        "archive": paths.dir.name,
        "run_id": meta.get("run_id"),
        "job": meta.get("job"),
        "status": meta.get("status"),
        "started_at": meta.get("started_at"),
        "finished_at": meta.get("finished_at"),
        "archived_at": meta.get("archived_at"),
        "results": headline(meta["results"]) if isinstance(meta.get("results"), dict) else None,
        "present": True,
        "orphan": True,
    }


def used_numbers(block: BlockPaths, runs: list[dict[str, Any]]) -> set[int]:
    """Numbers taken by an index entry or a directory (neither is ever reused)."""
    return {r["number"] for r in runs} | set(archive_dirs(block))


def archive_metadata(block: BlockPaths, ref: str | int) -> dict[str, Any]:
    """The metadata.yaml of archive ``ref`` (``3``, ``003`` or ``run_003``); a clear error if absent."""
    paths = find_archive(block, ref)
    meta = read_metadata(paths)
    if meta is None:
        raise ConfigError("archive has no readable metadata.yaml (incomplete)", paths.dir)
    return meta


def find_archive(block: BlockPaths, ref: str | int) -> ArchivePaths:
    """The directory of archive ``ref`` (``3``, ``003`` or ``run_003``); a clear error if absent."""
    text = str(ref)
    number = parse_archive_number(text) if text.startswith("run_") else (int(text) if text.isdigit() else None)
    if number is None or number < 1:
        raise ConfigError(f"not an archive number: {ref!r} (use e.g. 3 or run_003)")
    paths = archive_dirs(block).get(number)
    if paths is None:
        known = any(r["number"] == number for r in read_index(block))
        why = "is in index.yaml but its directory is missing" if known else "does not exist"
        raise ConfigError(f"archive {number} {why} (see `trialbook archives`)", block.archives,
                          not_found=True)
    return paths
