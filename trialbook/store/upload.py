"""Uploading one unit (a directory's files under one store prefix), resumably and idempotently.

Order: the files, then the manifest, then removal of objects the manifest no longer lists.
An object already in the store with the same size and content (its S3 ETag, else its bytes)
is not uploaded again, so a push interrupted at any point (even by ``kill -9``) is completed
by the next one without re-sending what arrived and without duplicates. Each store call is
retried with jittered exponential waits (tenacity); a unit that still fails is returned as
failed, never raised, so the caller (the runner) keeps its trial.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from trialbook.errors import SourceError, TrialbookError
from trialbook.store.fs import Store
from trialbook.store.manifest import (
    MANIFEST_NAME,
    FileEntry,
    Manifest,
    build_manifest,
    parse_manifest,
)

T = TypeVar("T")



@dataclass
class UnitResult:
    """What pushing one unit did."""

    unit: str
    prefix: str
    state: str = "pending"  # uploaded | present | failed
    uploaded: int = 0
    uploaded_bytes: int = 0
    already: int = 0
    removed: int = 0
    files: int = 0
    skipped: list[str] = field(default_factory=list)
    error: str | None = None


def _transient(exc: BaseException) -> bool:
    """Worth another attempt: network and server errors, not a missing bucket or a refusal."""
    return not isinstance(exc, PermissionError | FileNotFoundError | NotADirectoryError | TrialbookError)


def call(store_retries: int, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` retried on transient errors (up to ``store_retries`` attempts)."""
    for attempt in Retrying(stop=stop_after_attempt(store_retries), wait=wait_random_exponential(0.2, max=5),
                            retry=retry_if_exception(_transient), reraise=True):
        with attempt:
            return fn(*args, **kwargs)
    raise AssertionError("unreachable")  # pragma: no cover



def read_remote_manifest(store: Store, prefix: str, retries: int) -> Manifest | None:
    """The unit's manifest in the store; None when absent or unreadable (the unit is then re-checked)."""
    try:
        data = call(retries, store.fs.cat_file, f"{prefix}/{MANIFEST_NAME}")
    except FileNotFoundError:
        return None
    try:
        return parse_manifest(data, f"{store.url.protocol}://{prefix}/{MANIFEST_NAME}")
    except SourceError:
        return None


def _remote_listing(store: Store, prefix: str, retries: int) -> dict[str, dict[str, Any]]:
    """Objects under ``prefix`` by relative path, with their details (size, ETag)."""
    try:
        found = call(retries, store.fs.find, prefix, detail=True)
    except FileNotFoundError:
        return {}
    base = prefix.lstrip("/") + "/" if not store.is_local else prefix + "/"
    out: dict[str, dict[str, Any]] = {}
    for path, info in found.items():
        clean = path if store.is_local else path.lstrip("/")
        if clean.startswith(base):
            out[clean[len(base):]] = info
    return out


def _same_content(store: Store, entry: FileEntry, remote_path: str, info: dict[str, Any], retries: int) -> bool:
    """True when the stored object already holds exactly this file."""
    if int(info.get("size") or info.get("Size") or -1) != entry.size:
        return False
    etag = info.get("ETag") or info.get("etag")
    if etag:
        return entry.etag_matches(str(etag))
    digest = hashlib.sha256()  # a backend without ETags (a local directory): compare the bytes
    with store.fs.open(remote_path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest() == entry.sha256


def push_unit(store: Store, unit: str, prefix: str, files: dict[str, Path], *, retries: int = 3,
              skipped: list[str] | None = None, owns_prefix: bool = True) -> UnitResult:
    """Bring the store's copy of a unit to ``files`` (relative path -> local file); never raises.

    ``owns_prefix``: everything under ``prefix`` belongs to this unit (a trial), so objects not in
    the manifest are removed; otherwise (a job's own files, beside its trials) only files the
    previous manifest listed are.
    """
    result = UnitResult(unit, prefix)
    try:
        _push(store, result, prefix, files, retries, skipped or [], owns_prefix)
    except Exception as exc:  # noqa: BLE001 - recorded and retried later; never loses the trial
        result.state = "failed"
        result.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
    return result


def _push(store: Store, result: UnitResult, prefix: str, files: dict[str, Path], retries: int,
          skipped: list[str], owns_prefix: bool) -> None:
    manifest = build_manifest(files, skipped, unit=result.unit.split(":")[0])
    result.files, result.skipped = len(manifest.files), manifest.skipped
    previous = read_remote_manifest(store, prefix, retries)
    if previous is not None and previous.records() == manifest.records():
        result.state, result.already = "present", len(manifest.files)
        return
    if owns_prefix:
        remote = _remote_listing(store, prefix, retries)
    else:  # only this unit's files: ask about each (a job prefix also holds every trial)
        remote = {}
        for entry in manifest.files:
            try:
                remote[entry.path] = call(retries, store.fs.info, f"{prefix}/{entry.path}")
            except FileNotFoundError:
                continue
    for entry in manifest.files:
        target = f"{prefix}/{entry.path}"
        info = remote.get(entry.path)
        if info is not None and _same_content(store, entry, target, info, retries):
            result.already += 1
            continue
        if store.is_local:
            store.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        call(retries, store.fs.put_file, str(files[entry.path]), target)
        result.uploaded += 1
        result.uploaded_bytes += entry.size
    if store.is_local:
        store.fs.makedirs(prefix, exist_ok=True)
    call(retries, store.fs.pipe_file, f"{prefix}/{MANIFEST_NAME}", manifest.to_bytes())
    keep = {e.path for e in manifest.files} | {MANIFEST_NAME}
    stale = set(remote) if owns_prefix else {e.path for e in (previous.files if previous else [])}
    for rel in sorted(stale - keep):
        try:
            call(retries, store.fs.rm_file, f"{prefix}/{rel}")
            result.removed += 1
        except FileNotFoundError:
            pass
    result.state = "uploaded"
