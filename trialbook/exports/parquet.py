"""``trialbook export --format parquet``: trials, steps, tool calls and LLM calls as Parquet tables.

Output (hive-style partitions, one directory per job, readable by DuckDB, Polars, pandas,
Spark with no glue)::

    <out>/
      export.json                        what was exported: jobs, row counts, trialbook version
      trials/job=<job>/part-0.parquet    one row per trial         (columns: parquet_tables.TRIALS)
      steps/job=<job>/part-0.parquet     one row per ATIF step
      tool_calls/job=<job>/part-0.parquet  one row per tool call
      llm_calls/job=<job>/part-0.parquet   one row per LLM call

Memory stays bounded whatever the size of the input: jobs are read one at a time through their
layout's reader, each trial's trajectory is parsed, turned into rows and dropped, and rows go
to disk as a Parquet row group whenever a table's buffer reaches :data:`ROW_GROUP_ROWS` rows
or :data:`ROW_GROUP_BYTES` bytes of text. Everything is written in a hidden directory under
``<out>`` first and moved into place at the end, so an interrupted export leaves no table a
reader would take for complete; an earlier export is replaced only with ``force``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq

from trialbook import __version__
from trialbook.errors import ExitCode, TrialbookError
from trialbook.exports import parquet_tables as tables
from trialbook.jsonio import write_json
from trialbook.model.trial import utc_now
from trialbook.sources.base import JobView, TrialView
from trialbook.sources.registry import detect_layout, get_reader
from trialbook.sources.safe import SafeTree

ROW_GROUP_ROWS = 20_000
ROW_GROUP_BYTES = 64 * 1024 * 1024
MANIFEST = "export.json"
FILE_NAME = "part-0.parquet"


class ExportExistsError(TrialbookError):
    """An earlier export is in the target directory (nothing was written)."""

    exit_code = ExitCode.CONFLICT


@dataclass
class ParquetExport:
    """What an export wrote (printed by the CLI, also saved as ``export.json``)."""

    out_dir: str
    jobs: list[dict[str, Any]] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(tables.TABLES, 0))
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"out_dir": self.out_dir, "jobs": self.jobs, "rows": self.rows, "warnings": self.warnings,
                "seconds": round(self.seconds, 3)}


class _TableWriter:
    """Rows of one table of one job, flushed to one Parquet file as row groups."""

    def __init__(self, path: Path, schema: pa.Schema, max_rows: int, max_bytes: int) -> None:
        self.path = path
        self.schema = schema
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.buffer: list[dict[str, Any]] = []
        self.buffered_bytes = 0
        self.writer: pq.ParquetWriter | None = None
        self.count = 0

    def add(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self.buffer.append(row)
            self.buffered_bytes += sum(len(v) for v in row.values() if isinstance(v, str))
        if len(self.buffer) >= self.max_rows or self.buffered_bytes >= self.max_bytes:
            self.flush()

    def _open(self) -> pq.ParquetWriter:
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(self.path, self.schema, compression="zstd")
        return self.writer

    def flush(self) -> None:
        if not self.buffer:
            return
        self._open().write_table(pa.Table.from_pylist(self.buffer, schema=self.schema))
        self.count += len(self.buffer)
        self.buffer.clear()
        self.buffered_bytes = 0

    def close(self) -> None:
        """Write what is left; a table with no rows still gets a file (so its schema is there)."""
        self.flush()
        writer = self._open()
        if self.count == 0:
            writer.write_table(self.schema.empty_table())
        writer.close()


def partition_dir(job_name: str) -> str:
    """``job=<name>``, the name percent-encoded where it is not a plain file-name character."""
    return "job=" + quote(job_name, safe="-_.@+~")


def _job_name(name: str, job_dir: Path, taken: dict[str, str]) -> str:
    """The job's name as the index gives it: ``name@<8 hex of sha1(dir)>`` when another dir has it."""
    key = str(job_dir)
    if taken.get(name, key) == key:
        taken[name] = key
        return name
    unique = f"{name}@{hashlib.sha1(key.encode()).hexdigest()[:8]}"
    taken[unique] = key
    return unique


def _trial_rows(job_name: str, view: TrialView, reader: Any, tree: SafeTree | None) -> tuple[dict, list, list, list, str | None]:
    """(trial row, steps, tool_calls, llm_calls, warning) of one trial; its trajectory is parsed and dropped."""
    key = {"job_name": job_name, "trial_name": view.record.trial_name}
    steps: list[dict] = []
    calls: list[dict] = []
    llm: list[dict] = []
    problem = None
    traj = None
    try:
        traj = view.load_trajectory() if view.load_trajectory else None
    except TrialbookError as exc:
        problem = exc.message
    if traj is not None:
        steps, calls, llm = tables.trajectory_rows(key, traj)
    log = reader.log_files(view).get("litellm")
    warning = f"{view.path}: trajectory not exported ({problem})" if problem else None
    if log is not None and tree is not None:
        try:
            llm = tables.log_rows(key, tree, log)
        except TrialbookError as exc:
            warning = f"{log}: LLM calls taken from the trajectory ({exc})"
    row = tables.trial_row(job_name, view, len(traj.steps) if traj is not None else None, problem)
    return row, steps, calls, llm, warning


def _check_target(out: Path, force: bool) -> None:
    earlier = [out / name for name in (*tables.TABLES, MANIFEST) if (out / name).exists()]
    if earlier and not force:
        raise ExportExistsError("an earlier export is there; use --force to replace it, or another --out",
                                earlier[0])


def _move_into_place(staging: Path, out: Path) -> None:
    """Swap each table directory (and the manifest) of ``staging`` into ``out``; old ones are removed after."""
    old = Path(tempfile.mkdtemp(prefix=".trialbook-export-old-", dir=out))
    try:
        for name in (*tables.TABLES, MANIFEST):
            target = out / name
            if target.exists() or target.is_symlink():
                os.rename(target, old / name)
            os.rename(staging / name, target)
    finally:
        shutil.rmtree(old, ignore_errors=True)


def export_parquet(sources: Sequence[tuple[Path, str | None]], out: Path, *, force: bool = False,
                   row_group_rows: int = ROW_GROUP_ROWS, row_group_bytes: int = ROW_GROUP_BYTES,
                   on_job: Callable[[str, int], None] | None = None) -> ParquetExport:
    """Export every job under ``sources`` (``(path, layout or None to detect)``: roots, jobs, any layout).

    Raises :class:`ExportExistsError` before reading anything when ``out`` holds an earlier
    export and not ``force``. ``on_job(name, n_trials)`` is called after each job is written.
    """
    t0 = time.perf_counter()
    out = Path(os.path.abspath(out))
    _check_target(out, force)
    resolved = [(Path(os.path.abspath(p)), layout or detect_layout(Path(p))) for p, layout in sources]
    out.mkdir(parents=True, exist_ok=True)
    result = ParquetExport(out_dir=str(out))
    staging = Path(tempfile.mkdtemp(prefix=".trialbook-export-", dir=out))
    try:
        for name in tables.TABLES:
            (staging / name).mkdir()
        taken: dict[str, str] = {}
        seen: set[str] = set()
        for root, layout in sorted(resolved, key=lambda s: str(s[0])):
            reader = get_reader(layout)
            for job_dir in reader.job_dirs(root):
                if str(job_dir) in seen:
                    continue
                seen.add(str(job_dir))
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    job = reader.read_trials(job_dir, None)
                    entry = _export_job(job, reader, _job_name(job.name, job_dir, taken), staging, result,
                                        row_group_rows, row_group_bytes)
                result.warnings += list(dict.fromkeys(str(w.message) for w in caught))
                result.jobs.append(entry)
                if on_job is not None:
                    on_job(entry["job_name"], entry["rows"]["trials"])
        result.seconds = time.perf_counter() - t0
        write_json(staging / MANIFEST, {"format": "trialbook.parquet-export/1", "trialbook_version": __version__,
                                        "created_at": utc_now(), "sources": [str(p) for p, _ in resolved],
                                        **result.to_dict()})
        _move_into_place(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return result


def _export_job(job: JobView, reader: Any, job_name: str, staging: Path, result: ParquetExport,
                max_rows: int, max_bytes: int) -> dict[str, Any]:
    """Write one job's four partitions; returns its manifest entry."""
    part = partition_dir(job_name)
    writers = {name: _TableWriter(staging / name / part / FILE_NAME, tables.schema(name), max_rows, max_bytes)
               for name in tables.TABLES}
    try:
        tree = SafeTree(job.path, quiet=True)
    except TrialbookError:
        tree = None
    try:
        for view in job.trials:
            row, steps, calls, llm, warning = _trial_rows(job_name, view, reader, tree)
            writers["trials"].add([row])
            writers["steps"].add(steps)
            writers["tool_calls"].add(calls)
            writers["llm_calls"].add(llm)
            if warning:
                result.warnings.append(warning)
    finally:
        for writer in writers.values():
            writer.close()
    counts = {name: w.count for name, w in writers.items()}
    for name, n in counts.items():
        result.rows[name] += n
    return {"job_name": job_name, "job": job.name, "layout": job.layout, "job_dir": str(job.path),
            "partition": part, "rows": counts}
