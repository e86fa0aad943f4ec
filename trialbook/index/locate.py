"""Which index, which roots, which job: resolving what ``show``/``analyze``/``list`` are asked about.

* The index is ``<block>/results/index.db`` inside a block, else ``./results/index.db``
  (``--db`` overrides both).
* A block's roots are its jobs directory (``runtime_info.output``), every
  ``index.roots`` entry of its config.yaml, plus whatever roots the index already knows.
* Outside a block, a directory holding ``jobs/`` (Pier/Harbor jobs) and/or ``results/``
  (copilot-experiments' legacy runs) is a copilot-experiments checkout: both are its roots,
  and a command naming a job (or ``--last``) refreshes the index from them first, so it
  works there without a prior ``reindex``.
* A job is named by a path (any layout, read from the files), a name (the block's jobs
  directory first, then the index), or ``--last`` (the block's most recently started job,
  else the index's).
"""

from __future__ import annotations

import os
import sqlite3
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from trialbook.block.init import find_block
from trialbook.block.jobs import last_job_dir
from trialbook.errors import ConfigError, SourceError, TrialbookError
from trialbook.index.db import IndexCorrupt, open_readonly
from trialbook.index.queries import job_row, last_job
from trialbook.index.roots import RootSpec
from trialbook.jsonio import atomic_write_text
from trialbook.layout.paths import BlockPaths
from trialbook.sources import native_jobs

# Imported where used, to keep ``show --last`` light: trialbook.config (pydantic models of the
# block config: only when config.yaml changed, see _block_settings), the readers
# (trialbook.sources.registry) and trialbook.index.access (the reindex).


@dataclass(frozen=True)
class JobRef:
    """A job found by name or ``--last``: its name, directory and layout."""

    name: str
    job_dir: Path
    layout: str


def find_block_or_none(start: Path | None = None) -> BlockPaths | None:
    """The block containing ``start`` (default: cwd), or None outside any block."""
    try:
        return find_block(start)
    except ConfigError:
        return None


def index_path(block: BlockPaths | None, db: Path | None = None) -> Path:
    """The index database to use: ``db`` if given, the block's ``results/index.db``, else ``./results/index.db``."""
    if db is not None:
        return Path(os.path.abspath(db))
    if block is not None:
        return block.index_db
    return Path(os.getcwd()) / "results" / "index.db"


#: Where the block's config-derived paths are remembered (see :func:`_block_settings`).
_SETTINGS_CACHE = "index-settings.json"


def _config_key(block: BlockPaths) -> list[Any] | None:
    """What the cached settings depend on: config.yaml's identity and signature, the block and HOME."""
    try:
        st = os.stat(block.config)
    except OSError:
        return None
    return [str(block.root), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, os.path.expanduser("~")]


def _block_settings(block: BlockPaths) -> dict[str, Any]:
    """``{"jobs_dir": str, "roots": [str, ...]}`` from the block's config.yaml (ConfigError if invalid).

    Validating the config imports its pydantic models, which costs more than the rest of
    ``show --last``; so the result is remembered in ``.trialbook/index-settings.json`` keyed by
    config.yaml's signature, and the config is validated again only when that file changed.
    """
    key = _config_key(block)
    cache = block.root / ".trialbook" / _SETTINGS_CACHE
    if key is not None:
        try:
            cached = orjson.loads(cache.read_bytes())
            if (isinstance(cached, dict) and cached.get("key") == key and isinstance(cached.get("jobs_dir"), str)
                    and isinstance(cached.get("roots"), list) and all(isinstance(r, str) for r in cached["roots"])):
                return cached
        except (OSError, orjson.JSONDecodeError):
            pass
    from trialbook.config import load_config

    config = load_config(block.config)
    roots = []
    for entry in config.index.roots:
        path = Path(os.path.expanduser(entry))
        roots.append(str(path if path.is_absolute() else (block.root / path).resolve()))
    settings = {"key": key, "jobs_dir": str(config.output_dir(block.root)), "roots": roots}
    # not remembered when config.yaml was written within the last seconds (it may still be changing)
    settled = key is not None and key == _config_key(block) and key[4] < time.time_ns() - 2_000_000_000
    if settled:
        try:
            cache.parent.mkdir(exist_ok=True)
            atomic_write_text(cache, orjson.dumps(settings).decode())
        except OSError:
            pass  # a read-only block: validated every time
    return settings


def block_jobs_dir(block: BlockPaths) -> Path:
    """The block's jobs directory per its config (default ``artifacts/jobs``)."""
    try:
        return Path(_block_settings(block)["jobs_dir"])
    except ConfigError as exc:
        warnings.warn(f"{exc}; using {block.jobs}", stacklevel=2)
        return block.jobs


def block_roots(block: BlockPaths) -> list[RootSpec]:
    """The roots a block indexes: its jobs directory (native) and its config's ``index.roots``."""
    try:
        settings = _block_settings(block)
    except ConfigError as exc:
        warnings.warn(f"{exc}; indexing {block.jobs} only", stacklevel=2)
        return [RootSpec(block.jobs, "native")]
    return [RootSpec(Path(settings["jobs_dir"]), "native"), *(RootSpec(Path(r)) for r in settings["roots"])]


def checkout_roots(directory: Path | None = None) -> list[RootSpec]:
    """The roots of a copilot-experiments checkout at ``directory`` (default: cwd).

    ``jobs/`` holds Pier jobs (the Harbor layout; another layout found there is taken as
    detected); ``results/`` is indexed when it holds legacy runs (it may hold only index.db).
    """
    from trialbook.sources.registry import detect_layout, get_reader

    here = Path(os.path.abspath(directory or os.getcwd()))
    roots: list[RootSpec] = []
    jobs = here / "jobs"
    if jobs.is_dir() and not jobs.is_symlink():
        try:
            roots.append(RootSpec(jobs, detect_layout(jobs)))
        except SourceError:  # no job yet: still Pier's jobs directory
            roots.append(RootSpec(jobs, "harbor"))
    results = here / "results"
    if results.is_dir() and not results.is_symlink() and get_reader("legacy").detect(results):
        roots.append(RootSpec(results, "legacy"))
    return roots


def _native_last(block: BlockPaths) -> JobRef | None:
    last = last_job_dir(block_jobs_dir(block))
    return JobRef(last.name, last, "native") if last is not None else None


def _from_index(db: Path, name: str | None, roots: list[RootSpec] | None = None) -> JobRef | None:
    """The job from the index (refreshed from ``roots`` first when given); None without a usable index."""
    from trialbook.index.access import refresh

    if roots:
        try:
            refresh(db, roots)
        except (OSError, sqlite3.Error) as exc:
            warnings.warn(f"{db}: could not build the index here ({exc})", stacklevel=2)
    try:
        conn = open_readonly(db)
    except IndexCorrupt:
        if roots or not db.is_file():
            return None
        refresh(db, [])  # an index of an older trialbook: migrate it, then look again
        try:
            conn = open_readonly(db)
        except (IndexCorrupt, sqlite3.Error):
            return None
    except sqlite3.Error:
        return None
    try:
        row = job_row(conn, name) if name else last_job(conn)
    finally:
        conn.close()
    return JobRef(row["job_name"], Path(row["job_dir"]), row["layout"]) if row else None


def resolve_job(name: str | None, *, last: bool, block: BlockPaths | None, db: Path,
                roots: list[RootSpec] | None = None) -> JobRef:
    """The job meant by a name or ``--last`` (see the module docstring for the search order).

    ``roots``: outside a block, the checkout's roots, indexed before the index is asked.
    """
    roots = roots if block is None else None
    if name:
        if block is not None:
            candidate = block_jobs_dir(block) / name
            if candidate.is_dir() and native_jobs.detect(candidate):
                return JobRef(name, candidate, "native")
        ref = _from_index(db, name, roots)
        if ref is None:
            raise TrialbookError(f"no job named {name!r} in this block's jobs or in the index {db} "
                                 "(give a path, or run `trialbook reindex`)", not_found=True)
        return ref
    # No name: the last job, as every command means it (``--last`` says so explicitly).
    ref = _native_last(block) if block is not None else None
    ref = ref or _from_index(db, None, roots)
    if ref is None:
        raise TrialbookError("no job yet: nothing in this block's jobs directory or in the index",
                             not_found=True)
    return ref


def existing_path(target: str | None) -> Path | None:
    """``target`` as a path when it names an existing file or directory (else None: a job name)."""
    if not target:
        return None
    path = Path(target)
    if path.exists():
        return path
    if os.sep in target or target.startswith("."):
        raise SourceError("path not found", path, not_found=True)
    return None


def lookup_context(block_dir: Path | None, db: Path | None) -> tuple[BlockPaths | None, Path, list[RootSpec]]:
    """(block or None, index path, roots) for ``--block`` / ``--db``: the block's roots, or outside a
    block those of a copilot-experiments checkout here (``jobs/``, ``results/``; see ``checkout_roots``)."""
    block = find_block_or_none(block_dir)
    return block, index_path(block, db), block_roots(block) if block is not None else checkout_roots()


def find_job(target: str | None, block_dir: Path | None = None, db: Path | None = None) -> Path:
    """The job directory a command means by TARGET, the same for every command: an existing path as
    given; else a job name (or nothing: the last job) looked up in the block's jobs, then the index
    (outside a block, a copilot-experiments checkout's)."""
    path = existing_path(target)
    if path is not None:
        return path
    block, db_path, roots = lookup_context(block_dir, db)
    return resolve_job(target, last=target is None, block=block, db=db_path, roots=roots).job_dir
