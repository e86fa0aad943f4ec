"""The gold dataset: per-task metadata (domain, bug type, difficulty, repo, language, tags, ...).

Job analysis groups trials by what is known about their task. That knowledge is merged from
up to three sources, later ones winning field by field:

1. **derived** (lowest): what the trial records say without any dataset: the benchmark and
   dataset a reader reports (Velora, OpenHands) and, for SWE-bench-style ids such as
   ``django__django-11099`` or ``psf__requests_2.4.0_2.4.1``, the repo (``django/django``).
   Derived facts never count as gold coverage.
2. **task definitions**: for a native job, the tasks its ``config.yaml`` snapshot names
   (``tasks.path``: each task's ``task.toml [metadata]``; ``tasks.instances``: the
   SWE-style instance rows), resolved against the block the job lives in. A reader of
   another layout that knows its tasks' metadata passes it as ``extra["task_metadata"]``
   (a dict) on the trial record.
3. **gold file** (highest): ``--gold FILE`` or the snapshot's ``analysis.gold``: JSONL, JSON,
   CSV/TSV or YAML (an earlier ``analysis_config.yaml`` works too), keyed by task id.

Field names are normalised through :data:`ALIASES` (``category`` fills ``domain``, ``lang``
fills ``language``, ...). Tasks of the job missing from every explicit source (2 and 3) are
counted and listed in the reports, never dropped; gold entries for tasks the job does not
have are listed as ``extra``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from trialbook.errors import ConfigError, SourceError
from trialbook.jsonio import dumps, jsonl_values
from trialbook.sources.base import JobView
from trialbook.yamlio import load_yaml, read_yaml_or_none

#: The metadata fields analysis groups by, and the keys accepted for each (first found wins).
ALIASES: dict[str, tuple[str, ...]] = {
    "domain": ("domain", "category"),
    "bug_type": ("bug_type", "bug-type", "bugtype", "bug_category"),
    "difficulty": ("difficulty", "difficulty_level", "level"),
    "language": ("language", "lang", "programming_language"),
    "repo": ("repo", "repository"),
}
AXIS_FIELDS: tuple[str, ...] = tuple(ALIASES)

#: Keys that name the task in a gold row, in order of preference.
ID_KEYS: tuple[str, ...] = ("task", "task_id", "instance_id", "id", "name")

#: SWE-style instance fields too large or too specific to be metadata.
_INSTANCE_SKIP = {"patch", "test_patch", "problem_statement", "hints_text", "FAIL_TO_PASS", "PASS_TO_PASS",
                  "eval_script", "base_commit", "environment_setup_commit", "image", "created_at", "test_cmd",
                  "test_directives", "log_parser", "timeout_s"}
#: A git URL's ``owner/name`` (``https://github.com/o/n.git``, ``git@host:o/n.git``).
_GIT_URL = re.compile(r"^(?:[A-Za-z][\w+.-]*://[^/]+/|[\w.-]+@[\w.-]+:)(?:.*/)?(?P<repo>[^/]+/[^/]+?)(?:\.git)?/?$")

#: ``owner__name-123`` (SWE-bench) or ``owner__name_1.2.3_1.2.4`` (Velora SWE-hard).
_SWE_ID = re.compile(r"^(?P<owner>[A-Za-z0-9][\w.-]*?)__(?P<name>[A-Za-z0-9][\w.-]*?)(?:-\d+|_v?\d[\w.]*)$")


@dataclass(frozen=True)
class GoldSource:
    """One place gold data came from, with a hash of the content that was used."""

    kind: str
    path: str | None
    sha256: str | None
    n_entries: int

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self.path, "sha256": self.sha256, "n_entries": self.n_entries}


@dataclass
class Gold:
    """Merged per-task metadata plus which tasks explicit sources covered."""

    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    sources: list[GoldSource] = field(default_factory=list)
    explicit: set[str] = field(default_factory=set)
    file_ids: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    def fields_for(self, task: str) -> dict[str, Any]:
        """The metadata of ``task`` (empty when nothing is known)."""
        return self.tasks.get(task, {})

    def coverage(self, job_tasks: set[str]) -> dict[str, Any]:
        """Job tasks with and without explicit gold data, and gold-file ids the job lacks."""
        missing = sorted(job_tasks - self.explicit)
        extra = sorted(self.file_ids - job_tasks)
        return {"n_job_tasks": len(job_tasks), "n_with_gold": len(job_tasks) - len(missing),
                "n_missing": len(missing), "missing": missing, "n_extra": len(extra), "extra": extra,
                "problems": list(self.problems)}

    def table_sha256(self) -> str:
        """Hash of the merged table (what the analysis actually used)."""
        return hashlib.sha256(dumps(self.tasks, indent=False)).hexdigest()

    def merge(self, task: str, fields: dict[str, Any], *, explicit: bool) -> None:
        """Overlay ``fields`` on what is known about ``task`` (None values do not erase)."""
        row = self.tasks.setdefault(task, {})
        row.update({k: v for k, v in fields.items() if v is not None})
        if explicit:
            self.explicit.add(task)


# ------------------------------------------------------------------------------ normalising


def _value(v: Any) -> Any:
    """A JSON-safe metadata value: stripped strings (empty -> None), scalars, lists of those."""
    if isinstance(v, str):
        return v.strip() or None
    if v is None or isinstance(v, bool | int | float):
        return v
    if isinstance(v, list | tuple):
        items = [_value(x) for x in v]
        return [x for x in items if x is not None]
    if isinstance(v, dict):
        return {str(k): _value(x) for k, x in v.items()}
    return str(v)


def normalise(raw: dict[str, Any]) -> dict[str, Any]:
    """Metadata with nested ``metadata`` flattened, aliases resolved, axis values as strings."""
    flat = {str(k): v for k, v in raw.items() if k != "metadata" and k not in ID_KEYS}
    nested = raw.get("metadata")
    if isinstance(nested, dict):
        flat.update({str(k): v for k, v in nested.items()})
    out = {k: _value(v) for k, v in flat.items()}
    for axis, keys in ALIASES.items():
        for key in keys:
            value = out.get(key)
            if value not in (None, [], ""):
                out[axis] = value if isinstance(value, str) else str(value) if not isinstance(value, list) \
                    else ",".join(str(x) for x in value)
                break
    if isinstance(out.get("tags"), str):
        out["tags"] = [t.strip() for t in re.split(r"[;|]", out["tags"]) if t.strip()]
    return {k: v for k, v in out.items() if v is not None}


def derived_fields(view_extra: dict[str, Any], task: str) -> dict[str, Any]:
    """What a trial record says about its task without a dataset (see module docstring, source 1)."""
    out: dict[str, Any] = {}
    for key in ("benchmark", "dataset"):
        if isinstance(view_extra.get(key), str):
            out[key] = view_extra[key]
    m = _SWE_ID.match(task)
    if m:
        out["repo"] = f"{m.group('owner')}/{m.group('name')}"
    return out


# ------------------------------------------------------------------------------ gold files


def _row_id(row: dict[str, Any]) -> str | None:
    for key in ID_KEYS:
        value = row.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return None


def _add_rows(rows: list[tuple[str, Any]], path: Path) -> dict[str, dict[str, Any]]:
    """Check (where, row) pairs: objects, with an id, no id twice; returns id -> row."""
    out: dict[str, dict[str, Any]] = {}
    seen: dict[str, str] = {}
    for where, row in rows:
        if not isinstance(row, dict):
            raise ConfigError(f"{where}: expected an object, got {type(row).__name__}", path)
        tid = _row_id(row)
        if tid is None:
            raise ConfigError(f"{where}: no task id (one of: {', '.join(ID_KEYS)})", path)
        if tid in seen:
            raise ConfigError(f"{where}: task id {tid!r} repeats {seen[tid]}", path)
        seen[tid] = where
        out[tid] = row
    return out


def _jsonl_rows(text: str, path: Path) -> list[tuple[str, Any]]:
    try:
        return [(f"line {number}", value)
                for number, value in jsonl_values(text.encode("utf-8"), path, partial_last_line=False)]
    except SourceError as exc:  # a settings file: the user's to fix
        raise ConfigError(exc.message, path) from None


def _mapping_rows(data: Any, path: Path) -> list[tuple[str, Any]]:
    """A list of rows, or a mapping id -> row (an ``analysis_config.yaml``: its ``gold.tasks``)."""
    if isinstance(data, dict) and isinstance(data.get("gold"), dict) and isinstance(data["gold"].get("tasks"), dict):
        data = data["gold"]["tasks"]
    if isinstance(data, list):
        return [(f"entry {i}", row) for i, row in enumerate(data, start=1)]
    if isinstance(data, dict):
        return [(f"entry {k!r}", {"task": str(k), **row} if isinstance(row, dict) else row)
                for k, row in data.items()]
    raise ConfigError(f"expected a list of objects or a mapping of task id to object, got {type(data).__name__}",
                      path)


def _csv_rows(text: str, path: Path, delimiter: str) -> list[tuple[str, Any]]:
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    if not reader.fieldnames or not any(k in reader.fieldnames for k in ID_KEYS):
        raise ConfigError(f"line 1: the header has no task id column (one of: {', '.join(ID_KEYS)})", path)
    rows = []
    for row in reader:
        if None in row:
            raise ConfigError(f"line {reader.line_num}: more fields than the header has", path)
        rows.append((f"line {reader.line_num}", {k: (v if v != "" else None) for k, v in row.items()}))
    return rows


def read_gold_file(path: Path) -> tuple[dict[str, dict[str, Any]], str]:
    """Rows of a gold file by task id, and the sha256 of its bytes; bad input names file and line."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("gold file not found", path) from None
    except OSError as exc:
        raise ConfigError(f"cannot read gold file: {exc.strerror}", path) from None
    digest = hashlib.sha256(raw).hexdigest()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"gold file is not UTF-8: {exc}", path) from None
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows = _jsonl_rows(text, path)
    elif suffix == ".json":
        try:
            rows = _mapping_rows(orjson.loads(text), path)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"invalid JSON: {exc}", path) from None
    elif suffix in (".csv", ".tsv"):
        rows = _csv_rows(text, path, "\t" if suffix == ".tsv" else ",")
    elif suffix in (".yaml", ".yml"):
        rows = _mapping_rows(load_yaml(text, path), path)
    else:
        raise ConfigError("unknown gold file format (use .jsonl, .json, .csv, .tsv or .yaml)", path)
    return _add_rows(rows, path), digest


# ------------------------------------------------------------------------------ task definitions


def _snapshot(job_dir: Path) -> dict[str, Any]:
    """The native job's config.yaml snapshot (empty when absent or unreadable)."""
    data = read_yaml_or_none(job_dir / "config.yaml")
    return data if isinstance(data, dict) else {}


def block_root_of(job_dir: Path, snapshot: dict[str, Any]) -> Path | None:
    """The block a native job belongs to: undo ``runtime_info.output.eval_results_dir``, else look upward."""
    info = snapshot.get("runtime_info")
    output = info.get("output") if isinstance(info, dict) else None
    key = "raw_trajectories_dir" if snapshot.get("kind") == "trajgen" else "eval_results_dir"
    rel = Path(str((output.get(key) if isinstance(output, dict) else None) or "artifacts/jobs"))
    job_dir = job_dir.resolve()
    if not rel.is_absolute():
        root = job_dir.parent
        for _ in rel.parts:
            root = root.parent
        if (root / "config.yaml").is_file():
            return root
    for d in job_dir.parents:
        if (d / "config.yaml").is_file() and (d / "artifacts").is_dir():
            return d
    return None


def _resolve(root: Path | None, value: Any) -> Path | None:
    if not isinstance(value, str) or not value:
        return None
    p = Path(value).expanduser()
    if p.is_absolute():
        return p
    return (root / p) if root is not None else None


def _task_dirs_source(gold: Gold, tasks_dir: Path, names: set[str]) -> None:
    """Merge ``task.toml [metadata]`` of each job task found in ``tasks_dir``."""
    h = hashlib.sha256()
    n = 0
    for name in sorted(names):
        toml_path = tasks_dir / name / "task.toml"
        if not toml_path.is_file():
            continue
        raw = toml_path.read_bytes()
        try:
            meta = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            gold.problems.append(f"{toml_path}: not valid TOML: {exc}")
            continue
        h.update(name.encode() + b"\0" + raw + b"\0")
        metadata = meta.get("metadata") if isinstance(meta.get("metadata"), dict) else {}
        gold.merge(name, normalise(metadata), explicit=True)
        n += 1
    gold.sources.append(GoldSource("task_dirs", str(tasks_dir), h.hexdigest() if n else None, n))


def _instances_source(gold: Gold, path: Path, names: set[str]) -> None:
    """Merge the metadata fields of SWE-style instance rows (JSONL or a JSON list)."""
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
        data = _jsonl_rows(text, path) if path.suffix.lower() == ".jsonl" else _mapping_rows(orjson.loads(text), path)
    except (OSError, UnicodeDecodeError, orjson.JSONDecodeError, ConfigError) as exc:
        gold.problems.append(f"{path}: instances not readable: {exc}")
        return
    n = 0
    for _, row in data:
        if not isinstance(row, dict):
            continue
        tid = _row_id(row)
        if tid is None or tid not in names:
            continue
        fields = normalise({k: v for k, v in row.items() if k not in _INSTANCE_SKIP})
        url = _GIT_URL.match(str(fields.get("repo", "")))
        if url:
            fields["repo"] = url.group("repo")
        gold.merge(tid, fields, explicit=True)
        n += 1
    gold.sources.append(GoldSource("instances", str(path), hashlib.sha256(raw).hexdigest(), n))


def load_gold(job: JobView, gold_file: str | Path | None = None) -> Gold:
    """The merged gold table for ``job`` (module docstring: derived < task definitions < gold file).

    ``gold_file`` None means: the native job's snapshot ``analysis.gold``, if any.
    """
    gold = Gold()
    names = {t.record.task for t in job.trials}
    for t in job.trials:
        gold.merge(t.record.task, derived_fields(t.record.extra, t.record.task), explicit=False)
    from_readers = {t.record.task: t.record.extra["task_metadata"] for t in job.trials
                    if isinstance(t.record.extra.get("task_metadata"), dict)}
    for task, meta in sorted(from_readers.items()):
        gold.merge(task, normalise(meta), explicit=True)
    if from_readers:
        digest = hashlib.sha256(dumps(from_readers, indent=False)).hexdigest()
        gold.sources.append(GoldSource("reader", None, digest, len(from_readers)))
    if job.trialbook_job:
        snap = _snapshot(job.path)
        root = block_root_of(job.path, snap)
        tasks_cfg = snap.get("tasks") if isinstance(snap.get("tasks"), dict) else {}
        tasks_dir = _resolve(root, tasks_cfg.get("path"))
        if tasks_dir is not None:
            if tasks_dir.is_dir():
                _task_dirs_source(gold, tasks_dir, names)
            else:
                gold.problems.append(f"{tasks_dir}: task directory of the job's config not found")
        instances = _resolve(root, tasks_cfg.get("instances"))
        if instances is not None:
            if instances.is_file():
                _instances_source(gold, instances, names)
            else:
                gold.problems.append(f"{instances}: instances file of the job's config not found")
        if gold_file is None:
            analysis_cfg = snap.get("analysis") if isinstance(snap.get("analysis"), dict) else {}
            gold_file = _resolve(root, analysis_cfg.get("gold"))
    if gold_file is not None:
        path = Path(gold_file).resolve()
        rows, digest = read_gold_file(path)
        for tid, row in sorted(rows.items()):
            if tid in names:
                gold.merge(tid, normalise(row), explicit=True)
        gold.file_ids = set(rows)
        gold.sources.append(GoldSource("file", str(path), digest, len(rows)))
    gold.tasks = {k: dict(sorted(v.items())) for k, v in sorted(gold.tasks.items()) if k in names}
    return gold
