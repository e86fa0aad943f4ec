"""``trialbook archive restore N DIR``: a new block made from one archive alone, ready to rerun the run.

The archive holds the run's config (secrets redacted), its scripts and a copy of its inputs
(:mod:`trialbook.archive.inputs`). Restoring lays them out as a block::

    DIR/
      config.yaml     the archived config; tasks.path -> tasks (or tasks.instances -> the copied file)
      scripts/        the archived scripts
      tasks/          the archived task directories (or <instances file> for SWE-style runs)
      artifacts/      empty: jobs/ and archives/ of the new block

so that ``trialbook run --job <job>`` there runs the same tasks with the same variants. Output
directories the config placed outside the block are reset to the defaults (a rerun must never
write into the original block); relative ``index.roots`` are made absolute. An archive whose
input copy is incomplete (files over the size cap) is refused, naming what is missing.
SWE-style instances that name a local repository by a relative path get a link to where it
was (the repository itself is not part of an archive; its commits are in metadata.yaml).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trialbook.archive.index import find_archive, read_metadata
from trialbook.archive.inputs import TASKS_DIR
from trialbook.block.init import init_block
from trialbook.config import REDACTED
from trialbook.errors import ConfigError
from trialbook.layout.paths import BlockPaths

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://|^[\w.-]+@[\w.-]+:")
_GITHUB_SHORT = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


@dataclass
class RestoreResult:
    """The block made from an archive, and what the user should know before rerunning it."""

    block: Path
    archive: Path
    run_id: str | None
    job: str | None
    kind: str
    tasks: list[str] = field(default_factory=list)
    instances: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"block": str(self.block), "archive": str(self.archive), "run_id": self.run_id, "job": self.job,
                "kind": self.kind, "tasks": self.tasks, "instances": self.instances, "notes": self.notes}


def _redacted_paths(node: Any, prefix: str = "") -> list[str]:
    """Dotted paths of config values replaced by the redaction placeholder."""
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _redacted_paths(v, f"{prefix}{k}.")]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _redacted_paths(v, f"{prefix}{i}.")]
    return [prefix.rstrip(".")] if isinstance(node, str) and REDACTED in node else []


def _inside(path_text: str) -> bool:
    """True for a relative path that stays inside the directory it is relative to."""
    p = Path(path_text)
    return not p.is_absolute() and ".." not in p.parts


def _restored_config(raw: dict[str, Any], copy: dict[str, Any], original_block: Path,
                     notes: list[str]) -> dict[str, Any]:
    config = {k: v for k, v in raw.items() if k != "status"}
    tasks = dict(config.get("tasks") or {})
    if copy.get("instances"):
        tasks.pop("path", None)
        tasks["instances"] = copy["instances"]
    else:
        tasks.pop("instances", None)
        tasks["path"] = TASKS_DIR
    config["tasks"] = tasks
    output = ((config.get("runtime_info") or {}).get("output") or {})
    for key, value in list(output.items()):
        if isinstance(value, str) and not _inside(value):
            output.pop(key)
            notes.append(f"runtime_info.output.{key} ({value}) is outside the block: reset to the default")
    index = config.get("index")
    if isinstance(index, dict) and isinstance(index.get("roots"), list):
        index["roots"] = [r if not isinstance(r, str) or os.path.isabs(os.path.expanduser(r))
                          else str((original_block / r).resolve()) for r in index["roots"]]
    redacted = _redacted_paths(config)
    if redacted:
        notes.append("secret values were redacted in the archive; set them again in config.yaml: "
                     + ", ".join(redacted))
    return config


def _link_local_repos(instances: Path, original_file: str | None, dest: Path, notes: list[str]) -> None:
    """Link each relative local repository an instance names to where it was (see the module doc)."""
    if not original_file:
        return
    original_dir = Path(original_file).parent
    try:
        text = instances.read_text(encoding="utf-8")
        rows = json.loads(text) if text.lstrip().startswith("[") else [
            json.loads(line) for line in text.splitlines() if line.strip()]
    except (OSError, ValueError):
        return  # the runner reports a broken instances file itself, naming the line
    for repo in sorted({r.get("repo") for r in rows if isinstance(r, dict) and isinstance(r.get("repo"), str)}):
        if _URL.match(repo) or not _inside(repo):
            continue
        where, link = original_dir / repo, dest / repo
        if not where.exists():
            if not _GITHUB_SHORT.fullmatch(repo):  # owner/name is a GitHub address, not a local path
                notes.append(f"local repository {repo} named by the instances is gone from {where}")
            continue
        if link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(where.resolve(), target_is_directory=True)
        notes.append(f"{repo}: linked to the repository the run used, {where.resolve()}")


def restore_archive(block: BlockPaths, ref: str | int, dest: Path) -> RestoreResult:
    """Make a new block at ``dest`` (absent or empty) from archive ``ref`` of ``block``."""
    paths = find_archive(block, ref)
    meta = read_metadata(paths)
    if meta is None:
        raise ConfigError("archive has no readable metadata.yaml (incomplete)", paths.dir)
    inputs = meta.get("inputs") if isinstance(meta.get("inputs"), dict) else {}
    copy = inputs.get("copy")
    if not isinstance(copy, dict):
        raise ConfigError("this archive holds no copy of its inputs (made by an older trialbook): "
                          "it cannot be restored alone", paths.metadata)
    if not copy.get("complete", False):
        missing = [f"{m.get('path')} ({m.get('reason')})" for m in copy.get("not_copied") or []]
        raise ConfigError(f"the archive's input copy is incomplete, {len(missing)} file(s) not copied: "
                          + "; ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
                          + " (their sha256 are in metadata.yaml under inputs.copy.not_copied)", paths.metadata)
    try:
        raw = yaml.safe_load(paths.config.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"unreadable archived config ({exc})", paths.config) from None
    if not isinstance(raw, dict) or raw.get("kind") not in ("eval", "trajgen"):
        raise ConfigError("archived config is not a block config (kind: eval|trajgen)", paths.config)
    dest = Path(os.path.abspath(dest))
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ConfigError("restore needs a new or empty directory", dest)
    notes: list[str] = []
    config = _restored_config(raw, copy, Path(str(meta.get("block") or block.root)), notes)
    src = paths.dir / str(copy.get("dir") or "inputs")
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if copy.get("instances"):
            shutil.copy2(src / copy["instances"], dest / copy["instances"])
            _link_local_repos(dest / copy["instances"], inputs.get("instances_file"), dest, notes)
        elif (src / TASKS_DIR).is_dir():
            shutil.copytree(src / TASKS_DIR, dest / TASKS_DIR, symlinks=True)
        else:
            (dest / TASKS_DIR).mkdir()
        if paths.scripts.is_dir():
            shutil.copytree(paths.scripts, dest / "scripts", symlinks=True)
        header = (f"# Restored from {paths.dir} (run {meta.get('run_id')}, job {meta.get('job')}).\n"
                  f"# Rerun it: trialbook run --job {meta.get('job')}\n")
        init_block(dest, str(raw["kind"]), config_text=header + yaml.safe_dump(config, sort_keys=False))
    except BaseException:
        for entry in list(dest.iterdir()):  # leave the directory as empty as it was given
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        raise
    return RestoreResult(block=dest, archive=paths.dir, run_id=meta.get("run_id"), job=meta.get("job"),
                         kind=str(raw["kind"]), tasks=list(copy.get("tasks") or []),
                         instances=copy.get("instances"), notes=notes)
