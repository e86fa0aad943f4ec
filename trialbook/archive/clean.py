"""``trialbook clean``: remove a block's gitignored runtime outputs, never its history.

Removed: the jobs directory (``artifacts/jobs/`` or the configured output dir),
``artifacts/sft_data/`` (or ``sft_data_dir``), ``litellm/``, ``logs/``, ``dashboard/site/``
and ``dashboard/.cache/``, and whatever else the block's ``.gitignore`` lists as runtime
outputs (``results/`` with the index, ``.trialbook/``; see :func:`gitignored_outputs`);
``repos/`` only with ``repos=True``. Never removed:
``artifacts/archives/``, ``artifacts/index.yaml``, ``config.yaml`` and ``scripts/``; a
target that is or contains one of them (a misconfigured output dir) is refused. Runs only
in a block directory itself, and not while a job of the block is running.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from trialbook.config import BlockConfig, EnvironmentConfig, parse_config
from trialbook.errors import ConfigError, TrialbookError
from trialbook.flock import is_held
from trialbook.layout.paths import BlockPaths
from trialbook.yamlio import read_yaml


@dataclass(frozen=True)
class Removal:
    """One path clean removes (or would remove, on a dry run)."""

    path: Path
    what: str
    n_files: int
    n_bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "what": self.what, "files": self.n_files, "bytes": self.n_bytes}


def protected_paths(block: BlockPaths) -> list[Path]:
    """What clean never removes, whatever the config says."""
    return [block.archives, block.archive_index, block.config, block.scripts]


def check_block_dir(root: Path) -> BlockPaths:
    """``root`` itself must be a block: a config.yaml with ``kind: eval|trajgen`` and an ``artifacts/`` dir."""
    block = BlockPaths(root.resolve())
    data = None
    if block.config.is_file():
        try:
            data = read_yaml(block.config)
        except ConfigError as exc:  # e.g. an alias bomb: say so rather than "not a block"
            raise ConfigError(f"{exc.message}; refusing to clean", block.config) from None
    if not (isinstance(data, dict) and data.get("kind") in ("eval", "trajgen") and block.artifacts.is_dir()):
        raise ConfigError(f"{block.root} is not a trialbook block directory (needs config.yaml with "
                          "kind: eval|trajgen and artifacts/); refusing to clean")
    return block


def _config(block: BlockPaths) -> BlockConfig | None:
    try:
        return parse_config(read_yaml(block.config), block.config)
    except ConfigError:
        return None  # an invalid config still leaves the default locations to clean


def targets(block: BlockPaths, *, repos: bool = False) -> list[tuple[Path, str]]:
    """The (path, description) pairs clean considers, configured output dirs included."""
    out: list[tuple[Path, str]] = [(block.jobs, "jobs")]
    cfg = _config(block)
    if cfg is not None:
        jobs_dir = cfg.output_dir(block.root)
        if jobs_dir != block.jobs:
            out.append((jobs_dir, "jobs (runtime_info.output)"))
        if cfg.runtime_info.output.sft_data_dir:
            out.append(((block.root / cfg.runtime_info.output.sft_data_dir).resolve(),
                        "SFT data (runtime_info.output)"))
    out += [
        (block.sft_data, "SFT data"),
        (block.litellm, "LiteLLM logs"),
        (block.logs, "logs"),
        (block.dashboard_site, "dashboard site"),
        (block.dashboard_cache, "dashboard cache"),
    ]
    if repos:
        out.append((block.repos, "repositories"))
    repos_dir = block.repos.resolve()
    out += [(p, "listed in .gitignore") for p in gitignored_outputs(block)
            if repos or (p.resolve() != repos_dir and repos_dir not in p.resolve().parents)]
    seen: set[Path] = set()
    unique = []
    for path, what in out:
        real = path.resolve()  # artifacts/jobs may be a link to the configured dir
        if real not in seen:
            seen.add(real)
            unique.append((path, what))
    return unique


#: The comment that opens the runtime-output section of a block's .gitignore (as ``trialbook init``
#: writes it): only the entries of that section are runtime outputs when it is there.
SECTION_MARKER = "# trialbook runtime outputs"
#: Names a .gitignore commonly lists that are not runtime outputs: never removed by clean.
PRECIOUS = frozenset({".git", ".venv", "venv", ".env", ".envrc", ".idea", ".vscode"})


def runtime_patterns(text: str) -> list[str]:
    """The runtime-output entries of a .gitignore's text.

    With the section :data:`SECTION_MARKER` (what ``trialbook init`` writes), the entries from
    that comment to the next comment line; without it, every entry of the file. Blank lines and
    comments are dropped; negations (``!``) are kept, in order.
    """
    lines = [ln.strip() for ln in text.splitlines()]
    marker = next((i for i, ln in enumerate(lines) if ln.lower().startswith(SECTION_MARKER)), None)
    if marker is not None:
        section = []
        for ln in lines[marker + 1:]:
            if ln.startswith("#"):
                break
            section.append(ln)
        lines = section
    return [ln for ln in lines if ln and not ln.startswith("#")]


def _matches(block_root: Path, path: Path, pattern: str) -> bool:
    """Whether ``path`` (inside the block) matches one .gitignore pattern (git's rules, simplified)."""
    dir_only = pattern.endswith("/")
    pat = pattern.rstrip("/")
    if dir_only and not (path.is_dir() and not path.is_symlink()):
        return False
    rel = path.relative_to(block_root).as_posix()
    if "/" in pat:  # anchored at the block's root (``*`` may cross a ``/`` here: keeps more, never less)
        return fnmatch.fnmatchcase(rel, pat.lstrip("/"))
    return fnmatch.fnmatchcase(path.name, pat)


def _candidates(block_root: Path, pattern: str) -> list[Path]:
    """Paths of the block a positive pattern names (links not followed, ``.git`` not entered)."""
    pat = pattern.rstrip("/")
    if not any(c in pat for c in "*?["):
        path = block_root / pat.lstrip("/")
        return [path] if path.exists() or path.is_symlink() else []
    found = block_root.glob(pat.lstrip("/")) if "/" in pat else block_root.rglob(pat)
    return [p for p in found if ".git" not in p.relative_to(block_root).parts]


def gitignored_outputs(block: BlockPaths) -> list[Path]:
    """What the block's ``.gitignore`` lists as runtime outputs (see :func:`runtime_patterns`), existing
    paths only, outermost first.

    An entry without wildcards names that path from the block's root (``logs/`` is ``<block>/logs``,
    not every ``logs`` directory of the tasks); a wildcard entry without ``/`` matches names at any
    depth (``*.pyc``), one with ``/`` is a glob from the root (``**/__pycache__/``); a trailing ``/``
    means directories only; a later ``!pattern`` keeps a path. Nothing outside the block, protected
    by clean, inside ``.git`` or named in :data:`PRECIOUS` is returned; links are not followed."""
    try:
        patterns = runtime_patterns((block.root / ".gitignore").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return []
    protected = protected_paths(block)
    chosen: list[Path] = []
    for i, pattern in enumerate(patterns):
        if pattern.startswith("!") or "\\" in pattern or ".." in PurePosixPath(pattern).parts:
            continue
        for path in _candidates(block.root, pattern):
            if pattern.endswith("/") and (path.is_symlink() or not path.is_dir()):
                continue
            if block.root not in path.parents or any(part in PRECIOUS for part in
                                                      path.relative_to(block.root).parts):
                continue
            if any(path == keep or keep in path.parents or path in keep.parents for keep in protected):
                continue  # history and config, or a directory holding them
            later = [p for p in patterns[i + 1:] if p.startswith("!")]
            if any(_matches(block.root, path, neg[1:]) for neg in later):
                continue
            chosen.append(path)
    out: list[Path] = []
    for path in sorted(set(chosen), key=lambda p: len(p.parts)):
        if not any(parent in path.parents for parent in out):
            out.append(path)
    return out


def _check_safe(block: BlockPaths, path: Path) -> None:
    """Refuse a target outside the block, the block itself, or one holding a protected path."""
    root = block.root
    if path == root or root not in path.parents:
        raise ConfigError(f"refusing to clean {path}: not a directory inside the block {root}")
    for keep in protected_paths(block):
        if path == keep or path in keep.parents:
            raise ConfigError(f"refusing to clean {path}: it holds {keep}, which clean never removes")


def running_jobs(jobs_dir: Path) -> list[str]:
    """Jobs whose lock is held right now (a runner is working on them)."""
    if not jobs_dir.is_dir():
        return []
    return [lock.parent.name for lock in sorted(jobs_dir.glob("*/.lock")) if is_held(lock)]


def _size(path: Path) -> tuple[int, int]:
    if path.is_symlink() or path.is_file():
        return 1, path.lstat().st_size
    files = size = 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            files += 1
            try:
                size += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return files, size


def clean_block(root: Path, *, repos: bool = False, dry_run: bool = False) -> list[Removal]:
    """Remove (or, with ``dry_run``, list) the block's runtime outputs; returns what was removed."""
    block = check_block_dir(root)
    plan = [(p, what) for p, what in targets(block, repos=repos) if p.exists() or p.is_symlink()]
    for path, _ in plan:
        _check_safe(block, path)
    busy = [j for p, what in plan if what.startswith("jobs") for j in running_jobs(p)]
    if busy:
        raise ConfigError(f"job(s) {', '.join(busy)} are running in this block; refusing to clean "
                          "while a runner writes there")
    removed = []
    for path, what in plan:
        n_files, n_bytes = _size(path)
        if not dry_run:
            if path.is_symlink() or path.is_file():
                path.unlink()  # a link is removed, never what it points at
            else:
                shutil.rmtree(path)
        removed.append(Removal(path, what, n_files, n_bytes))
    return removed


def clean_images(root: Path, *, dry_run: bool = False) -> list[str]:
    """Remove (or list) the container images trialbook built, with the engine the block's config
    names (``environment.type: docker`` or ``podman``, with its ``engine_flags``), else with each
    of podman and docker that is installed and answers. Returns the image names."""
    from trialbook.run.environments.container import (
        ContainerEnvironment,
        DockerEnvironment,
        PodmanEnvironment,
    )

    block = check_block_dir(root)
    config = _config(block)
    env_config = config.environment if config is not None else None
    engines: list[type[ContainerEnvironment]] = [PodmanEnvironment, DockerEnvironment]
    if env_config is not None and env_config.type in ("docker", "podman"):
        engines = [e for e in engines if e.type == env_config.type]
        return engines[0].prune_images(env_config, dry_run=dry_run)
    names: list[str] = []
    for engine in engines:
        if shutil.which(engine.engine) is None:
            continue
        try:
            names += engine.prune_images(EnvironmentConfig(type=engine.type), dry_run=dry_run)
        except TrialbookError:
            continue  # installed but not running: nothing of it to prune
    return names
