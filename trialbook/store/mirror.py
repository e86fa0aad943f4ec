"""A verified local copy of jobs in a store, for the normal readers (``show``, ``reindex``, dashboard).

The store is read by its manifests: a trial is copied only once its manifest is there (a
trial still uploading is left out, with a warning), each file is checked against the
manifest's size and sha256 as it is downloaded, and only what changed since the last mirror
is downloaded again (the previous manifest's ETag and each file's sha256/size/mtime are kept
in ``.trialbook-mirror.json`` beside the copy). Keys are untrusted: one with ``..``, an
absolute path, an empty or control-character component, or an object that is a link is
refused with a one-line error, and nothing is ever written outside the copy's directory.
The copy lives in ``~/.cache/trialbook/store/<protocol>/<bucket>/<prefix>`` by default.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from trialbook.errors import SourceError
from trialbook.jsonio import write_json
from trialbook.layout.store_url import StoreURL, check_component
from trialbook.store.fs import Store, open_store
from trialbook.store.manifest import MANIFEST_NAME, Manifest, parse_manifest

STATE_NAME = ".trialbook-mirror.json"
_JOB_UNIT = ""


@dataclass
class MirrorResult:
    """What a mirror did and where the local copy is."""

    url: str
    local: Path
    jobs: list[str] = field(default_factory=list)
    trials: int = 0
    downloaded: int = 0
    downloaded_bytes: int = 0
    unchanged: int = 0
    removed: int = 0
    warnings: list[str] = field(default_factory=list)


def _refuse(url: StoreURL, key: str, why: str) -> SourceError:
    return SourceError(f"object key {key!r} refused: {why}", str(url))


def _listing(store: Store, url: StoreURL) -> dict[str, dict[str, Any]]:
    """Every object under ``url`` by safe relative key (unsafe keys and links are refused)."""
    try:
        found = store.fs.find(url.root, detail=True)
    except FileNotFoundError:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for path, info in found.items():
        try:
            rel = url.relative(path)
        except SourceError as exc:
            raise SourceError(exc.message, str(url)) from None
        if info.get("islink") or info.get("type") == "link":
            raise _refuse(url, rel, "it is a link")
        out[rel] = info
    return out


def _safe_dir(base: Path, rel_dir: str) -> Path:
    """``base/rel_dir`` created component by component; a component that is not a plain directory
    (a link put there by someone) stops the mirror."""
    current = base
    for part in [p for p in rel_dir.split("/") if p]:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            current.mkdir()
            continue
        if not stat.S_ISDIR(mode):
            raise SourceError("is not a plain directory in the mirror (refusing to follow it)", current)
    return current


def _download(store: Store, url: StoreURL, remote: str, target_dir: Path, name: str, size: int,
              sha256: str) -> Path:
    """Download ``remote`` into ``target_dir/name`` via a temp file, checking size and sha256."""
    fd, tmp = tempfile.mkstemp(dir=target_dir, prefix=f".{name[:40]}.", suffix=".part")
    digest, got = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out, store.fs.open(remote, "rb") as src:
            while chunk := src.read(min(8 << 20, size - got + 1) or 1):
                got += len(chunk)
                if got > size:
                    break
                digest.update(chunk)
                out.write(chunk)
        if got != size or digest.hexdigest() != sha256:
            raise SourceError(f"object does not match its manifest (size {got} vs {size}, or sha256 differs); "
                              "not used", f"{url.protocol}://{remote}")
        target = target_dir / name
        os.replace(tmp, target)
        return target
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _read_state(local: Path) -> dict[str, Any]:
    try:
        data = orjson.loads((local / STATE_NAME).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _sync_unit(store: Store, url: StoreURL, unit: str, local: Path, listing: dict[str, dict[str, Any]],
               old: dict[str, Any], result: MirrorResult) -> dict[str, Any]:
    """Bring ``local/unit`` to the unit's manifest; returns the unit's new mirror state."""
    prefix = f"{unit}/" if unit else ""
    info = listing[f"{prefix}{MANIFEST_NAME}"]
    etag = info.get("ETag") or info.get("etag")
    unit_dir = _safe_dir(local, unit)
    manifest: Manifest
    if etag and old.get("etag") == etag and isinstance(old.get("files"), dict):
        manifest = Manifest([])  # unchanged manifest: its files are those recorded
        entries = {p: (f["size"], f["sha256"]) for p, f in old["files"].items()}
    else:
        where = f"{url}/{prefix}{MANIFEST_NAME}"
        manifest = parse_manifest(store.fs.cat_file(url.key(prefix + MANIFEST_NAME)), where)
        entries = {f.path: (f.size, f.sha256) for f in manifest.files}
    old_files: dict[str, Any] = old.get("files") if isinstance(old.get("files"), dict) else {}
    files: dict[str, Any] = {}
    for rel, (size, sha) in sorted(entries.items()):
        key = f"{prefix}{rel}"
        parent, _, name = rel.rpartition("/")
        target_dir = _safe_dir(unit_dir, parent)
        target = target_dir / name
        seen = old_files.get(rel)
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            st = None
        if (seen and st is not None and stat.S_ISREG(st.st_mode) and seen.get("sha256") == sha
                and st.st_size == size and seen.get("mtime_ns") == st.st_mtime_ns):
            files[rel] = seen
            result.unchanged += 1
            continue
        if key not in listing:
            raise SourceError(f"{rel} is in the manifest of {unit or 'the job'} but not in the store", str(url))
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise SourceError("is not a regular file in the mirror (refusing to replace it)", target)
        written = _download(store, url, url.key(key), target_dir, name, size, sha)
        files[rel] = {"size": size, "sha256": sha, "mtime_ns": os.lstat(written).st_mtime_ns}
        result.downloaded += 1
        result.downloaded_bytes += size
    for rel in sorted(set(old_files) - set(files)):  # dropped from the store since the last mirror
        with contextlib.suppress(FileNotFoundError):
            (unit_dir / rel).unlink()
            result.removed += 1
    return {"etag": etag, "files": files}


def mirror_job(store: Store, url: StoreURL, local: Path, result: MirrorResult) -> None:
    """Mirror one job prefix (its own files and every complete trial) into ``local``."""
    listing = _listing(store, url)
    local.mkdir(parents=True, exist_ok=True)
    state = _read_state(local)
    units: list[str] = []
    incomplete: set[str] = set()
    for rel in listing:
        head, sep, rest = rel.partition("/")
        if rel == MANIFEST_NAME:
            units.append(_JOB_UNIT)
        elif sep and rest == MANIFEST_NAME:
            problem = check_component(head, "trial name")
            if problem or head.startswith("."):
                raise _refuse(url, rel, problem or "a trial name starts with '.'")
            units.append(head)
        elif sep:
            incomplete.add(head)
    trials = sorted(u for u in units if u)
    new_state: dict[str, Any] = {"url": str(url), "units": {}}
    old_units = state.get("units") if isinstance(state.get("units"), dict) else {}
    for unit in sorted(units):  # the job's own files first: they say which directories are not trials
        new_state["units"][unit] = _sync_unit(store, url, unit, local, listing, old_units.get(unit) or {}, result)
    job_files = new_state["units"].get(_JOB_UNIT, {}).get("files", {})
    job_dirs = {rel.split("/")[0] for rel in job_files if "/" in rel}
    for name in sorted(incomplete - set(trials) - job_dirs):
        result.warnings.append(f"{url}/{name}: no manifest yet (upload incomplete or running); not read")
    for gone in sorted(set(old_units) - set(units)):  # a trial removed from the store since
        if gone and check_component(gone, "trial") is None and not gone.startswith("."):
            shutil.rmtree(local / gone, ignore_errors=True)
            result.removed += 1
    write_json(local / STATE_NAME, new_state)
    result.trials += len(trials)
    result.jobs.append(url.root.rsplit("/", 1)[-1])


def _holds_trials(store: Store, url: StoreURL) -> bool:
    """True when ``url`` is a job whose own manifest is not written yet (its trials' are)."""
    try:
        children = store.fs.ls(url.root, detail=True)
    except FileNotFoundError:
        return False
    for info in children:
        if info.get("type") != "directory":
            continue
        key = f"{str(info['name']).rstrip('/')}/{MANIFEST_NAME}"
        try:
            data = store.fs.cat_file(key)
        except FileNotFoundError:
            continue
        try:
            return parse_manifest(data, key).unit == "trial"
        except SourceError:
            return False
    return False


def mirror(target: str | StoreURL, *, cache_root: Path | None = None, options: dict[str, Any] | None = None,
           store: Store | None = None) -> MirrorResult:
    """Mirror ``target``: one job (``s3://bucket/prefix/JOB``) or every job under a prefix."""
    url = target if isinstance(target, StoreURL) else StoreURL.parse(target)
    store = store or open_store(url, options)
    local = url.cache_dir(cache_root)
    result = MirrorResult(str(url), local)
    if store.fs.exists(url.key(MANIFEST_NAME)) or _holds_trials(store, url):
        mirror_job(store, url, local, result)
    else:
        try:
            children = store.fs.ls(url.root, detail=True)
        except FileNotFoundError:
            children = []
        names = []
        for info in children:
            name = str(info.get("name", "")).rstrip("/").rsplit("/", 1)[-1]
            if info.get("type") != "directory" or name.startswith("."):
                continue
            problem = check_component(name, "job name")
            if problem:
                raise _refuse(url, name, problem)
            names.append(name)
        for name in sorted(names):
            child = url.child(name)
            if store.fs.exists(child.key(MANIFEST_NAME)) or store.fs.find(child.root, maxdepth=2):
                mirror_job(store, child, local / name, result)
        if not result.jobs:
            raise SourceError("no job found in the store here (nothing pushed yet?)", str(url), not_found=True)
    for w in result.warnings:
        warnings.warn(w, stacklevel=2)
    return result
