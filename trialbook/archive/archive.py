"""Run archives: snapshot one run into ``artifacts/archives/run_NNN/`` and append it to index.yaml.

How an archive is made, so that concurrent archivers and crashes are safe:

1. everything is written into a private temp directory ``artifacts/archives/.tmp-<pid>-*``;
2. under the index lock, the next free number is claimed with ``os.mkdir(run_NNN)``
   (atomic: a name that exists is skipped, so two archivers never share a number, even
   without the lock), and the temp directory is renamed onto the claimed empty directory
   in one step: ``run_NNN`` goes from empty to complete;
3. only then is the entry added to index.yaml, rewritten atomically.

A crash before step 3 leaves at worst a temp directory (removed by the next archive once
its process is gone) or an orphan ``run_NNN`` without an index entry (listed with a
warning, see :mod:`trialbook.archive.index`); never a half entry, never an entry without
its archive. Secrets are redacted from every file copied in. The run's inputs (task
directories or the instances file) are copied into ``inputs/`` within a size cap
(:mod:`trialbook.archive.inputs`), so the archive alone can rerun the job
(:mod:`trialbook.archive.restore`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from trialbook import secrets
from trialbook.archive.index import (
    archive_dirs,
    index_locked,
    read_index,
    read_metadata,
    used_numbers,
    write_index,
)
from trialbook.archive.inputs import copy_inputs
from trialbook.archive.metadata import (
    headline,
    repo_commits,
    results_summary,
    secret_literals,
    task_inputs,
    versions,
)
from trialbook.config import redact_config, redact_text
from trialbook.jsonio import atomic_write_text
from trialbook.layout.archive_paths import TMP_PREFIX, ArchivePaths, archive, archive_dir_name
from trialbook.layout.paths import BlockPaths, JobPaths
from trialbook.model.trial import utc_now
from trialbook.run.monitor import parse_ts, pid_alive
from trialbook.run.tasks import Task

METADATA_SCHEMA = "trialbook.archive/1"


@dataclass
class RunInfo:
    """Everything an archive records about one run (built by the post-run step or ``trialbook archive``)."""

    block: BlockPaths
    job: JobPaths
    kind: str
    run_id: str
    status: str
    started_at: str | None
    finished_at: str | None
    aggregate: dict[str, Any]
    raw_config: dict[str, Any]
    tasks: list[Task] = field(default_factory=list)
    tasks_error: str | None = None
    dataset_dir: Path | None = None
    #: The SWE-style instances file the run read (``tasks.instances``), copied into the archive.
    instances_file: Path | None = None
    session_log: str | None = None
    monitor_md: str | None = None
    trigger: str = "run"
    #: More literal secret values to scrub (e.g. from the block's current config.yaml).
    extra_secrets: list[str] = field(default_factory=list)


@dataclass
class ArchiveResult:
    """Where an archive went and the index entry written for it."""

    number: int
    path: Path
    run_id: str
    entry: dict[str, Any]


def make_run_id(job: str, started_at: str | None) -> str:
    """``<job>__<UTC start, compact>``, e.g. ``demo__20261121T172348Z``: unique per run of a job."""
    ts = parse_ts(started_at)
    when = datetime.fromtimestamp(ts, UTC) if ts is not None else datetime.now(UTC)
    return f"{job}__{when.strftime('%Y%m%dT%H%M%SZ')}"


class _Scrubber:
    """Redacts secret env values and the config's literal secrets from text, bytes and data."""

    def __init__(self, raw_config: dict[str, Any], extra: list[str] | None = None) -> None:
        self.extra = sorted({*secret_literals(raw_config), *(extra or [])}, key=len, reverse=True)

    def text(self, text: str) -> str:
        return redact_text(text, self.extra)

    def data(self, node: Any) -> Any:
        if isinstance(node, dict):
            return {k: self.data(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self.data(v) for v in node]
        return self.text(node) if isinstance(node, str) else node

    def bytes(self, data: bytes) -> bytes:
        return secrets.SecretSet(self.extra).bytes(secrets.current().bytes(data))


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)


def _copy_scripts(src: Path, dst: Path, scrub: _Scrubber) -> list[str]:
    """Copy the block's scripts (regular files only, modes kept, secrets redacted)."""
    copied = []
    dst.mkdir()
    if not src.is_dir():
        return copied
    for path in sorted(src.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        rel = path.relative_to(src)
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(scrub.bytes(path.read_bytes()))
        target.chmod(path.stat().st_mode & 0o777)
        copied.append(str(rel))
    return copied


def build_metadata(info: RunInfo, scripts: list[str], scrub: _Scrubber,
                   inputs_copy: dict[str, Any] | None = None) -> dict[str, Any]:
    """The content of ``metadata.yaml`` (without the number, which is set when claimed)."""
    config = redact_config({k: v for k, v in info.raw_config.items() if k != "status"})
    meta = {
        "schema": METADATA_SCHEMA,
        "number": None,
        "archive": None,
        "run_id": info.run_id,
        "job": info.job.name,
        "job_dir": str(info.job.dir),
        "block": str(info.block.root),
        "block_kind": info.kind,
        "block_name": info.raw_config.get("name"),
        "status": info.status,
        "trigger": info.trigger,
        "started_at": info.started_at,
        "finished_at": info.finished_at,
        "archived_at": utc_now(),
        "results": results_summary(info.aggregate),
        "repos": repo_commits(info.block, info.dataset_dir, info.tasks, info.instances_file),
        "versions": versions(),
        "inputs": {
            "tasks": task_inputs(info.tasks),
            "tasks_error": info.tasks_error,
            "instances_file": str(info.instances_file) if info.instances_file else None,
            "config": config,
            "copy": inputs_copy,
        },
        "files": {"scripts": scripts, "session_log": info.session_log is not None,
                  "monitor": info.monitor_md is not None},
    }
    return scrub.data(meta)


def index_entry(meta: dict[str, Any]) -> dict[str, Any]:
    """The index.yaml entry of an archive: identity, timestamps and headline results."""
    results = meta.get("results")
    return {
        "number": meta["number"],
        "archive": meta["archive"],
        "run_id": meta.get("run_id"),
        "job": meta.get("job"),
        "kind": meta.get("block_kind"),
        "status": meta.get("status"),
        "trigger": meta.get("trigger"),
        "started_at": meta.get("started_at"),
        "finished_at": meta.get("finished_at"),
        "archived_at": meta.get("archived_at"),
        "results": headline(results) if isinstance(results, dict) else None,
    }


def remove_stale_temp_dirs(block: BlockPaths) -> list[Path]:
    """Delete ``.tmp-<pid>-*`` directories left by archivers that died; returns what was removed."""
    removed = []
    if not block.archives.is_dir():
        return removed
    for p in block.archives.iterdir():
        if not p.name.startswith(TMP_PREFIX) or not p.is_dir():
            continue
        pid = p.name[len(TMP_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def _claim(block: BlockPaths, first: int) -> ArchivePaths:
    """Create the first free ``run_NNN`` at or above ``first``; mkdir's atomicity makes it ours."""
    n = first
    while True:
        target = archive(block, n)
        try:
            os.mkdir(target.dir)
        except FileExistsError:
            n += 1
            continue
        return target


def create_archive(info: RunInfo) -> ArchiveResult:
    """Archive one run as the next ``run_NNN`` and append its index entry (see the module doc)."""
    block = info.block
    block.archives.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_dirs(block)
    tmp = ArchivePaths(Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", dir=block.archives)))
    scrub = _Scrubber(info.raw_config, info.extra_secrets)
    try:
        config = {k: v for k, v in info.raw_config.items() if k != "status"}
        atomic_write_text(tmp.config, "# Config of run " + info.run_id + " (secrets redacted).\n"
                          + _dump(scrub.data(redact_config(config))))
        scripts = _copy_scripts(block.scripts, tmp.scripts, scrub)
        inputs_copy = copy_inputs(info.tasks, info.instances_file, tmp.inputs, scrub.bytes)
        atomic_write_text(tmp.session_log, scrub.text(info.session_log or ""))
        atomic_write_text(tmp.monitor, scrub.text(info.monitor_md or "No monitor report was recorded.\n"))
        meta = build_metadata(info, scripts, scrub, inputs_copy)
        with index_locked(block):
            runs = read_index(block)  # a malformed index stops us before any number is claimed
            target = _claim(block, max(used_numbers(block, runs), default=0) + 1)
            number = target.number
            assert number is not None
            meta.update(number=number, archive=archive_dir_name(number))
            try:
                atomic_write_text(tmp.metadata, _dump(meta))
                os.rename(tmp.dir, target.dir)  # onto our own empty claim: atomic
            except BaseException:
                with contextlib.suppress(OSError):  # still our empty claim: give the number back
                    os.rmdir(target.dir)
                raise
            entry = index_entry(meta)
            write_index(block, [*runs, entry])
    except BaseException:
        shutil.rmtree(tmp.dir, ignore_errors=True)
        raise
    return ArchiveResult(number, target.dir, info.run_id, entry)


def repair_index(block: BlockPaths) -> list[str]:
    """Index orphan archives that have metadata and drop empty stale claims; returns what was done.

    Run under the index lock, so an empty ``run_NNN`` seen here is a claim whose archiver
    died before its rename (live archivers hold the lock while their claim is empty).
    """
    actions: list[str] = []
    with index_locked(block):
        runs = read_index(block)
        indexed = {r["number"] for r in runs}
        added = []
        for n, paths in sorted(archive_dirs(block).items()):
            if n in indexed:
                continue
            meta = read_metadata(paths)
            if meta is not None:
                meta.update(number=n, archive=paths.dir.name)
                added.append(index_entry(meta))
                actions.append(f"indexed orphan archive {paths.dir.name} (run {meta.get('run_id')})")
            elif not any(paths.dir.iterdir()):
                paths.dir.rmdir()
                actions.append(f"removed {paths.dir.name}: an empty claim left by a crashed archiver")
            else:
                actions.append(f"left {paths.dir.name} alone: it has no readable metadata.yaml")
        if added:
            write_index(block, [*runs, *added])
    return actions
