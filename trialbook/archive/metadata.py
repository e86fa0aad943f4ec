"""What an archive's ``metadata.yaml`` records besides the run itself: results, repos, versions, inputs.

Repository state is read with ``git -C DIR rev-parse HEAD`` and ``git status --porcelain``
(scoped to the directory): the block directory, the task dataset (the tasks directory, or
the directory of the instances file), every task directory and every local SWE repository
that is a git repository are recorded once per repository, and so is every bare clone the
runner keeps under ``repos/`` (its HEAD, origin and the commits pinned for trials). SWE-style
tasks also record their repository and ``base_commit`` in the task list.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import trialbook
from trialbook.config import REDACTED, redact_config
from trialbook.layout.paths import BlockPaths
from trialbook.run.tasks import Task

GIT_TIMEOUT_S = 20.0


def _git(directory: Path, *args: str) -> str | None:
    """Output of ``git -C directory args`` (stripped), None when git fails or is missing."""
    try:
        proc = subprocess.run(["git", "-C", str(directory), *args], capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def git_toplevel(directory: Path) -> Path | None:
    """The work tree root containing ``directory``, found by looking for ``.git`` (no subprocess)."""
    d = directory.resolve()
    for candidate in (d, *d.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def git_info(directory: Path) -> dict[str, Any]:
    """HEAD commit, branch and dirty flag of the repository holding ``directory``.

    ``dirty`` is true when ``git status --porcelain`` reports changes under ``directory``
    (ignored files do not count). Outside a repository: ``{"git": False}``.
    """
    info: dict[str, Any] = {"path": str(directory)}
    top = git_toplevel(directory) if directory.exists() else None
    if top is None:
        return {**info, "git": False}
    info.update({"git": True, "toplevel": str(top)})
    info["head"] = _git(directory, "rev-parse", "HEAD")  # None in a repository without commits
    info["branch"] = _git(directory, "rev-parse", "--abbrev-ref", "HEAD")
    status = _git(directory, "status", "--porcelain", "--", ".")
    info["dirty"] = None if status is None else bool(status)
    return info


def is_bare_repo(path: Path) -> bool:
    """True for a bare git repository (``HEAD``, ``objects/`` and ``refs/`` at its top, no work tree)."""
    return (not path.is_symlink() and (path / "HEAD").is_file() and (path / "objects").is_dir()
            and (path / "refs").is_dir() and not (path / ".git").exists())


def bare_info(path: Path, base_commits: dict[str, set[str]]) -> dict[str, Any]:
    """HEAD and origin of a bare clone, the commits pinned under ``refs/trialbook/``, and the
    ``base_commit`` of every task using that origin (``base_commits``: address -> commits),
    with those the clone lacks listed under ``missing_commits``."""
    pinned = _git(path, "for-each-ref", "--format=%(objectname)", "refs/trialbook/")
    origin = _git(path, "config", "--get", "remote.origin.url")
    used = sorted(base_commits.get(origin or "", set()))
    return {"path": str(path), "git": True, "bare": True, "head": _git(path, "rev-parse", "HEAD"),
            "origin": origin, "pinned_commits": sorted(set(pinned.split())) if pinned else [],
            "base_commits": used,
            "missing_commits": [c for c in used if _git(path, "cat-file", "-e", f"{c}^{{commit}}") is None]}


def _swe_repo(task: Task) -> tuple[str, str] | None:
    """(repository address, base_commit) of a SWE-style task, None for other tasks."""
    inst = getattr(task, "instance", None)
    repo = getattr(task, "repo_url", None)
    commit = getattr(inst, "base_commit", None)
    return (repo, commit) if isinstance(repo, str) and repo and isinstance(commit, str) else None


def repo_commits(block: BlockPaths, dataset_dir: Path | None, tasks: list[Task],
                 instances_file: Path | None = None) -> dict[str, Any]:
    """Commit ids of the block directory and of every dataset, task, SWE or ``repos/`` git repository.

    Each repository is recorded once, under the first label that reaches it (``block``,
    ``dataset``, ``task:<name>``, ``swe:<address>``, ``repo:<name>``); a dataset inside an
    already recorded repository names that repository instead. Bare clones under ``repos/``
    are recorded each on its own (they are inside the block's work tree but are not part of it).
    """
    repos: dict[str, Any] = {"block": git_info(block.root)}
    seen: dict[Path, str] = {}
    block_top = git_toplevel(block.root)
    if block_top is not None:
        seen[block_top] = "block"
    if dataset_dir is None and instances_file is not None:
        dataset_dir = instances_file.parent
    candidates: list[tuple[str, Path]] = []
    if dataset_dir is not None:
        candidates.append(("dataset", dataset_dir))
        repos["dataset"] = {"path": str(dataset_dir), "git": False}
    candidates += [(f"task:{t.name}", t.source_dir) for t in tasks if t.source_dir is not None]
    base_commits: dict[str, set[str]] = {}
    for r in map(_swe_repo, tasks):
        if r is not None:
            base_commits.setdefault(r[0], set()).add(r[1])
    swe = sorted(base_commits)
    candidates += [(f"swe:{addr}", Path(addr)) for addr in swe if Path(addr).is_absolute() and Path(addr).is_dir()]
    if block.repos.is_dir():
        for p in sorted(block.repos.iterdir()):
            if p.name.startswith(".") or not p.is_dir():
                continue
            if is_bare_repo(p):
                repos[f"repo:{p.name}"] = bare_info(p, base_commits)
            else:
                candidates.append((f"repo:{p.name}", p))
    for label, path in candidates:
        top = git_toplevel(path)
        if top is None:
            continue
        if top in seen:
            if label == "dataset":
                repos[label] = {"path": str(path), "git": True, "same_repository_as": seen[top]}
            continue
        seen[top] = label
        repos[label] = git_info(top if label.startswith("task:") else path)
    return repos


def versions() -> dict[str, str]:
    """trialbook, Python and platform versions of the process writing the archive."""
    return {
        "trialbook": trialbook.__version__,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "executable": sys.executable,
    }


def task_inputs(tasks: list[Task]) -> list[dict[str, Any]]:
    """The task list with content hashes (SHA-256 of each task's files), sorted by name;
    SWE-style tasks add their repository address and ``base_commit``."""
    out = []
    for t in sorted(tasks, key=lambda t: t.name):
        entry: dict[str, Any] = {"name": t.name, "hash": f"sha256:{t.content_hash()}",
                                 "source": str(t.source_dir) if t.source_dir else None}
        swe = _swe_repo(t)
        if swe is not None:
            entry.update(repo=swe[0], base_commit=swe[1])
        out.append(entry)
    return out


def results_summary(agg: dict[str, Any]) -> dict[str, Any]:
    """Counts by outcome, success rates and pass@k per variant, from a job aggregate."""
    n = agg.get("n_trials") or 0
    outcomes = agg.get("outcomes") or {}
    resolved = outcomes.get("resolved", 0)
    variants = {}
    for name, v in (agg.get("variants") or {}).items():
        variants[name] = {
            "agent": v.get("agent"),
            "model": v.get("model"),
            "n_trials": v.get("n_trials"),
            "n_success": v.get("n_success"),
            "n_errors": v.get("n_errors"),
            "success_rate": v.get("success_rate"),
            "mean_reward": v.get("mean_reward"),
            "outcomes": v.get("outcomes"),
            "pass_at_k": v.get("pass_at_k"),
        }
    return {
        "n_trials_planned": agg.get("n_trials_planned"),
        "n_trials": n,
        "n_resolved": resolved,
        "n_errors": agg.get("n_errors"),
        "success_rate": resolved / n if n else None,
        "success_rate_counts": "resolved / all finished trials (errors included in the denominator)",
        "outcomes": outcomes,
        "errors_by_type": agg.get("errors_by_type") or {},
        "variants": variants,
    }


def headline(results: dict[str, Any]) -> dict[str, Any]:
    """The few numbers an index entry repeats: trials, resolved, errors, success rate per variant."""
    return {
        "n_trials": results.get("n_trials"),
        "n_resolved": results.get("n_resolved"),
        "n_errors": results.get("n_errors"),
        "success_rate": results.get("success_rate"),
        "variants": {name: {"success_rate": v.get("success_rate"),
                            "pass_at_1": (v.get("pass_at_k") or {}).get("1")}
                     for name, v in results.get("variants", {}).items()},
    }


def secret_literals(raw_config: dict[str, Any]) -> list[str]:
    """Literal secret values of a config (those redaction replaces), to scrub from copied text too."""
    found: list[str] = []

    def walk(raw: Any, red: Any) -> None:
        if isinstance(raw, dict) and isinstance(red, dict):
            for k, v in raw.items():
                walk(v, red.get(k))
        elif isinstance(raw, list) and isinstance(red, list):
            for a, b in zip(raw, red, strict=False):
                walk(a, b)
        elif isinstance(raw, str | int | float) and not isinstance(raw, bool) and red == REDACTED:
            text = str(raw)
            if len(text) >= 4 and text != REDACTED:
                found.append(text)

    walk(raw_config, redact_config(raw_config))
    return sorted(set(found), key=len, reverse=True)
