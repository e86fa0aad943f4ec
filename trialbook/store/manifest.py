"""The manifest of one uploaded unit (a trial, a job's own files, an archive, SFT data).

A unit's manifest lists every file (relative path, size, sha256) and is written *last*:
a unit whose manifest is in the store is complete; one without (or with an older one) is
completed by the next push. Its bytes are deterministic (no timestamps), so pushing an
unchanged unit again finds the same manifest and uploads nothing.

Local files are read the way every host-side reader reads what a sandbox wrote
(:mod:`trialbook.untrusted`): links and non-regular files are never followed, only listed
as skipped.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from trialbook.errors import SourceError
from trialbook.jsonio import dumps
from trialbook.layout.store_url import safe_relpath
from trialbook.untrusted import open_regular

#: The manifest's object name inside its unit's prefix (never a name a trial or job file has:
#: trial and job names cannot start with '.', and trialbook writes no such file).
MANIFEST_NAME = ".trialbook-manifest.json"
FORMAT = "trialbook-store-manifest"
VERSION = 1
#: Part size of multipart uploads (s3fs's default): the ETag of a bigger object is the MD5 of
#: its parts' MD5s, which :func:`FileEntry.etag_matches` recomputes locally.
PART_SIZE = 50 * 2**20
#: A manifest larger than this is refused (a trial has thousands of files at most).
MAX_MANIFEST_BYTES = 64 * 2**20


@dataclass(frozen=True)
class FileEntry:
    """One file of a unit: path relative to the unit, size, sha256 (and MD5s, kept in memory only)."""

    path: str
    size: int
    sha256: str
    md5: str = ""
    part_md5s: tuple[bytes, ...] = ()

    def record(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}

    def etag_matches(self, etag: str | None) -> bool:
        """True when an S3 ETag is this content's (single-part MD5, or multipart with PART_SIZE parts)."""
        if not etag or not self.md5:
            return False
        etag = etag.strip('"')
        if "-" not in etag:
            return etag == self.md5
        digest, _, count = etag.partition("-")
        if not count.isdigit() or int(count) != len(self.part_md5s):
            return False
        return hashlib.md5(b"".join(self.part_md5s), usedforsecurity=False).hexdigest() == digest


@dataclass
class Manifest:
    """The files of one unit, sorted by path."""

    files: list[FileEntry]
    #: What the unit is: ``trial``, ``job`` (a job's own files), ``sft_data``, ``archive``.
    unit: str = "trial"
    #: Local entries not uploaded (links, FIFOs, devices), with why: never read, reported.
    skipped: list[str] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        return dumps({"format": FORMAT, "version": VERSION, "unit": self.unit,
                      "files": [f.record() for f in sorted(self.files, key=lambda f: f.path)]}) + b"\n"

    def records(self) -> list[tuple[str, int, str]]:
        """(path, size, sha256) of every file: what two manifests are compared on."""
        return sorted((f.path, f.size, f.sha256) for f in self.files)

    def by_path(self) -> dict[str, FileEntry]:
        return {f.path: f for f in self.files}

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def parse_manifest(data: bytes, where: str) -> Manifest:
    """A manifest read from a store: its format checked and every path checked as a safe key."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise SourceError(f"manifest is larger than {MAX_MANIFEST_BYTES} bytes", where)
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise SourceError(f"manifest is not JSON ({exc})", where) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("files"), list):
        raise SourceError(f"not a trialbook store manifest (expected format {FORMAT!r})", where)
    if doc.get("version") != VERSION:
        raise SourceError(f"manifest version {doc.get('version')!r} is not supported (expected {VERSION})", where)
    files: list[FileEntry] = []
    seen: set[str] = set()
    for item in doc["files"]:
        if not (isinstance(item, dict) and isinstance(item.get("path"), str)
                and isinstance(item.get("size"), int) and item["size"] >= 0
                and isinstance(item.get("sha256"), str) and len(item["sha256"]) == 64):
            raise SourceError(f"manifest entry {str(item)[:80]!r} needs path, size and sha256", where)
        try:
            path = safe_relpath(item["path"])
        except SourceError as exc:
            raise SourceError(exc.message, where) from None
        if path == MANIFEST_NAME or path in seen:
            raise SourceError(f"manifest entry {path!r} is repeated or names the manifest itself", where)
        seen.add(path)
        files.append(FileEntry(path, item["size"], item["sha256"].lower()))
    unit = doc.get("unit")
    return Manifest(files, unit if isinstance(unit, str) else "trial")


def hash_file(path: Path, rel: str) -> FileEntry | None:
    """sha256, MD5 and part MD5s of a regular file, read without following links (None: not regular)."""
    opened = open_regular(path)
    if opened is None:
        return None
    fd, _ = opened
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    parts: list[bytes] = []
    part = hashlib.md5(usedforsecurity=False)
    in_part = size = 0
    try:
        while chunk := os.read(fd, 1 << 20):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
            view = memoryview(chunk)
            while view:  # part boundaries fall inside chunks when PART_SIZE is not a multiple
                take = min(len(view), PART_SIZE - in_part)
                part.update(view[:take])
                in_part += take
                view = view[take:]
                if in_part == PART_SIZE:
                    parts.append(part.digest())
                    part, in_part = hashlib.md5(usedforsecurity=False), 0
    finally:
        os.close(fd)
    if in_part:
        parts.append(part.digest())
    return FileEntry(rel, size, sha.hexdigest(), md5.hexdigest(), tuple(parts))


def walk_files(root: Path, *, exclude_dirs: Iterable[str] = (), exclude_files: Iterable[str] = ()
               ) -> tuple[dict[str, Path], list[str]]:
    """Regular files under ``root`` by '/'-joined relative path, and what was skipped (links, ...).

    ``exclude_dirs`` / ``exclude_files`` name top-level entries left out (another unit's, a lock).
    Directory links are never entered.
    """
    skip_dirs, skip_files = set(exclude_dirs), set(exclude_files) | {MANIFEST_NAME}
    found: dict[str, Path] = {}
    skipped: list[str] = []
    stack: list[tuple[Path, str]] = [(root, "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            skipped.append(f"{prefix or '.'}: cannot be listed ({exc.strerror})")
            continue
        for entry in entries:
            rel = f"{prefix}{entry.name}"
            top = not prefix
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError:
                continue
            if stat.S_ISDIR(mode):
                if not (top and entry.name in skip_dirs):
                    stack.append((Path(entry.path), rel + "/"))
            elif stat.S_ISREG(mode):
                if not (top and entry.name in skip_files):
                    found[rel] = Path(entry.path)
            else:
                skipped.append(f"{rel}: {'a symbolic link' if stat.S_ISLNK(mode) else 'not a regular file'}, "
                               "not uploaded")
    return found, skipped


def build_manifest(files: dict[str, Path], skipped: list[str] | None = None, unit: str = "trial") -> Manifest:
    """Hash ``files`` (relative path -> local path) into a manifest."""
    entries: list[FileEntry] = []
    skipped = list(skipped or [])
    for rel, path in sorted(files.items()):
        entry = hash_file(path, rel)
        if entry is None:
            skipped.append(f"{rel}: not a regular file when read, not uploaded")
        else:
            entries.append(entry)
    return Manifest(entries, unit, skipped)
