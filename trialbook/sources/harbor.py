"""Reader of Harbor and Pier job trees (spec 004), Copilot runs included.

::

    jobs/<job>/                       a Harbor/Pier root holds jobs/; read() accepts the root,
      config.json  result.json        jobs/, one job, or one trial
      lock.json    job.log
      <trial>/
        config.json  result.json      Harbor TrialResult: identity, agent, rewards, exception, timings
        exception.txt
        agent/trajectory.json         ATIF from the installed agent
        agent/copilot-session/<id>/events.jsonl   Copilot session log (turns, tools, tokens, AIU)
        agent/copilot-otel.jsonl      OTel GenAI spans;  agent/copilot-cli.jsonl|.txt  CLI output
        verifier/reward.txt|reward.json

Decisions (Harbor itself stores no variant or attempt):

* **variant** = ``<agent>`` or ``<agent>__<model>``, the model as Harbor's ``stats.evals`` keys
  spell it (``model_info.name``, no provider: ``terminus-2__scripted``), so our per-variant counts
  line up with Harbor's own. Characters outside ``[A-Za-z0-9._-]`` become ``-``. When one job has
  the same agent with two models of that name from different providers, those trials use the
  full provider-qualified name instead. ``model`` keeps the name as configured
  (``openai/scripted``). Agent kwargs are not part of the variant (Harbor does not split on them).
* **attempt** = 1..n within (task, variant), ordered by the trial's ``started_at``, then trial
  name (trials without a start time come last). Stable across re-reads of the same tree.
* **outcome**: an exception decides (table in :mod:`trialbook.sources.harbor_outcome`; a reward
  the verifier still wrote is kept in ``reward``), else a positive primary reward is ``resolved``
  (spec 004), else ``unresolved``; no exception and no reward is a ``verifier_error``. A trial dir without ``result.json`` is ``running`` while the
  job is (job ``result.json`` without ``finished_at``), otherwise ``infra_error`` with the reason.
* **usage**, field by field, from the first source that knows it: ``agent_result``, the ATIF
  ``final_metrics``, the Copilot session log, the OTel spans. Turns and tool calls come from the
  Copilot log, else the ATIF steps, else the OTel spans.

Listing reads result/config files, the Copilot logs and ``trajectory.json`` as raw JSON (for
totals and counts, not validated); the ATIF model is built on ``TrialView.trajectory()``: from
``agent/trajectory.json``, else converted from the Copilot session log (the one with most
events), else from ``copilot-cli.jsonl``. All files are opened through
:class:`~trialbook.sources.safe.SafeTree`, so links out of the tree are never followed.
"""

from __future__ import annotations

import dataclasses
import os
import re
import warnings
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from trialbook.errors import SourceError
from trialbook.sources import copilot
from trialbook.sources.base import JobView, SourceReader, TrialStream, TrialView
from trialbook.sources.harbor_trial import TrialDraft, identity_draft, read_trial, trial_files
from trialbook.sources.safe import SafeTree

_SLUG_RE = re.compile(r"[^A-Za-z0-9._-]+")

__all__ = ["HarborReader", "read_job", "slug"]


def slug(text: str) -> str:
    """``text`` usable as a variant name (letters, digits, ``.``, ``_``, ``-``)."""
    return _SLUG_RE.sub("-", text).strip("-") or "unknown"


def _json_dict(tree: SafeTree, path: Path) -> dict[str, Any] | None:
    """A JSON object file, or None when absent/unreadable (detection never raises)."""
    if not tree.is_file(path):
        return None
    try:
        data = tree.read_json(path)
    except SourceError:
        return None
    return data if isinstance(data, dict) else None


def is_trial_dir(tree: SafeTree, path: Path) -> bool:
    """A Harbor trial: ``result.json`` or ``config.json`` naming a ``trial_name``."""
    return any("trial_name" in (_json_dict(tree, path / n) or {}) for n in ("result.json", "config.json"))


def is_job_dir(tree: SafeTree, path: Path) -> bool:
    """A Harbor job: a job-shaped ``config.json``/``result.json``, or trial dirs with no job files."""
    for name, keys in (("config.json", ("job_name", "n_attempts", "agents")),
                       ("result.json", ("n_total_trials", "stats"))):
        data = _json_dict(tree, path / name)
        if data is not None and "trial_name" not in data and any(k in data for k in keys):
            return True
    if (path / "config.json").exists() or (path / "result.json").exists() or (path / "lock.json").exists():
        return any(is_trial_dir(tree, d) for d in tree.subdirs(path)[:5])
    return False


def trial_dirs_of(tree: SafeTree, job_dir: Path) -> list[Path]:
    """Every sub-directory of a job is a trial, except a trialbook ``analysis/`` written into it."""
    return [Path(d) for d in trial_paths_of(tree, job_dir)]


def trial_paths_of(tree: SafeTree, job_dir: Path) -> list[str]:
    """:func:`trial_dirs_of` as plain strings."""
    return [d for d in tree.subdir_paths(job_dir)
            if not (os.path.basename(d) == "analysis" and os.path.isfile(f"{d}/analysis_config.yaml"))]


def _job_dirs(tree: SafeTree, path: Path) -> list[Path]:
    """Job directories at ``path``: itself, its ``jobs/`` children, or its children."""
    if is_job_dir(tree, path):
        return [path]
    parent = path / "jobs" if tree.is_dir(path / "jobs") else path
    jobs = [d for d in tree.subdirs(parent) if is_job_dir(tree, d)]
    if jobs and not tree.quiet:
        for d in sorted(set(tree.subdirs(parent)) - set(jobs)):
            warnings.warn(f"{d}: not a Harbor job (no job config.json/result.json or trials); skipped",
                          stacklevel=3)
    return jobs


# -- job level --------------------------------------------------------------------------


def _time_key(value: str | None) -> float:
    if not value:
        return float("inf")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except (ValueError, OverflowError, OSError):
        return float("inf")


def _assign_variants(drafts: list[TrialDraft]) -> None:
    """Variant per trial: agent + model as Harbor's evals spell it (see module docstring)."""
    full_by_short: dict[tuple[str, str], set[str]] = {}
    for d in drafts:
        if d.model_short:
            full_by_short.setdefault((d.agent, d.model_short), set()).add(d.model or d.model_short)
    for d in drafts:
        if not d.model_short:
            d.variant = slug(d.agent)
            continue
        ambiguous = len(full_by_short[(d.agent, d.model_short)]) > 1
        d.variant = f"{slug(d.agent)}__{slug(d.model if ambiguous and d.model else d.model_short)}"


def _assign_attempts(drafts: list[TrialDraft]) -> None:
    """Attempt 1..n per (task, variant) by start time, then name."""
    groups: dict[tuple[str, str], list[TrialDraft]] = {}
    for d in drafts:
        groups.setdefault((d.task, d.variant), []).append(d)
    for group in groups.values():
        group.sort(key=lambda d: (_time_key(d.started_at), d.trial_name))
        for number, d in enumerate(group, start=1):
            d.attempt = number


def read_job(tree: SafeTree, job_dir: Path, only: set[str] | None = None,
             known: Mapping[str, Any] | None = None) -> JobView:
    """One Harbor/Pier job: its trials (every sub-directory is one) and its start/finish/status.

    ``only``: read just the trials at these paths in full; the others are needed for identity
    only, because variants and attempt numbers depend on every trial of the job (incremental
    reindex): taken from ``known`` (the identities the index stored) where given, else read.
    """
    job = _job_header(tree, job_dir)
    known = known or {}
    drafts: list[TrialDraft] = []
    wanted: list[TrialDraft] = []
    for d in trial_paths_of(tree, job_dir):
        if only is None or d in only:
            draft = read_trial(tree, Path(d), job_dir.name, job_running=job.status == "running")
            wanted.append(draft)
        else:  # siblings stay plain strings: a partial read of a big job has thousands
            draft = TrialDraft.from_identity(d, job_dir.name, known.get(d)) or identity_draft(tree, Path(d),
                                                                                              job_dir.name)
        drafts.append(draft)
    _assign_variants(drafts)
    _assign_attempts(drafts)
    return dataclasses.replace(job, trials=[_view(d) for d in wanted])  # (JobView sorts its trials)


def _view(draft: TrialDraft) -> TrialView:
    return TrialView(record=draft.record(), path=Path(draft.path), layout="harbor", load_trajectory=draft.loader,
                     extra={"identity": draft.identity(), "files": draft.files, "stats": draft.stats})


def _job_header(tree: SafeTree, job_dir: Path) -> JobView:
    """The job's own fields (from its ``result.json``), without trials."""
    problems: list[str] = []
    result: dict[str, Any] = {}
    if tree.exists(job_dir / "result.json"):
        try:
            result = tree.read_json_object(job_dir / "result.json")
        except SourceError as exc:
            problems.append(str(exc))
    started = result.get("started_at") if isinstance(result.get("started_at"), str) else None
    finished = result.get("finished_at") if isinstance(result.get("finished_at"), str) else None
    status = "finished" if finished else ("running" if result else None)
    stats = result.get("stats") if isinstance(result.get("stats"), dict) else {}
    meta: dict[str, Any] = {
        "n_total_trials": result.get("n_total_trials"),
        "n_errored_trials": stats.get("n_errored_trials"),
        "job_id": result.get("id"),
    }
    if problems:
        meta["problems"] = problems
    return JobView(name=job_dir.name, path=job_dir, layout="harbor", trials=[],
                   started_at=started, finished_at=finished, status=status,
                   meta={k: v for k, v in meta.items() if v is not None})


#: A streamed job's trials are read through one tree per this many (its caches stay bounded).
_STREAM_TREE_TRIALS = 1024
#: Jobs with fewer trials are read whole even when streamed (~10 KB a trial, so at most ~50 MB):
#: streaming reads each trial's ``result.json`` twice (~12% more CPU), worth it for big jobs only.
STREAM_MIN_TRIALS = 5000


def stream_job(root: Path, job_dir: Path, names: list[str] | None = None) -> TrialStream:
    """The job with each trial (``names``, None: all) read in full only when asked. Variant and
    attempt numbers depend on every trial, so each trial's identity is read first (its
    ``result.json``) and only the numbers are kept: memory per trial is a name and two values.
    A job of fewer than :data:`STREAM_MIN_TRIALS` trials is read whole instead."""
    tree = SafeTree(root, quiet=True)
    paths = trial_paths_of(tree, job_dir)
    if len(paths) < STREAM_MIN_TRIALS:
        whole = read_job(tree, job_dir)
        by_name = {t.path.name: t for t in whole.trials}
        whole.trials = []
        return TrialStream(job=whole, names=[n for n in (names or by_name) if n in by_name], read_trial=by_name.get)
    job = _job_header(tree, job_dir)
    drafts = [identity_draft(tree, Path(d), job_dir.name) for d in paths]
    _assign_variants(drafts)
    _assign_attempts(drafts)
    numbers = {os.path.basename(d.path): (d.variant, d.attempt) for d in drafts}
    listed = list(numbers) if names is None else [n for n in names if n in numbers]
    del drafts
    trees = [tree]
    reads = 0

    def read_one(name: str) -> TrialView | None:
        nonlocal reads
        if reads and reads % _STREAM_TREE_TRIALS == 0:
            trees[0] = SafeTree(root, quiet=True)
        reads += 1
        draft = read_trial(trees[0], job_dir / name, job_dir.name, job_running=job.status == "running")
        draft.variant, draft.attempt = numbers[name]
        return _view(draft)

    return TrialStream(job=job, names=listed, read_trial=read_one)


class HarborReader(SourceReader):
    """Harbor jobs and Pier (copilot-experiments) jobs, which share Harbor's layout."""

    name = "harbor"
    aliases = ("pier",)

    def detect(self, path: Path) -> bool:
        if not path.is_dir():
            return False
        try:
            tree = SafeTree(path, quiet=True)
        except SourceError:
            return False
        if is_trial_dir(tree, path) and is_job_dir(SafeTree(path.parent, quiet=True), path.parent):
            return True
        return bool(_job_dirs(tree, path))

    def job_dirs(self, path: Path) -> list[Path]:
        """Job directories under ``path`` without reading any trial."""
        path = Path(path)
        if is_trial_dir(SafeTree(path, quiet=True), path):
            return [path.parent]
        return _job_dirs(SafeTree(path, quiet=True), path)

    def trial_dirs(self, job_dir: Path) -> list[Path]:
        """The trial directories of one job (no file read)."""
        return trial_dirs_of(SafeTree(job_dir, quiet=True), Path(job_dir))

    def trial_files(self, trial_dir: Path) -> list[Path]:
        """Files whose change means re-reading the trial: its own, the agent logs, the rewards
        (each directory listed once: this runs for every trial of a reindex)."""
        return [Path(p) for p in trial_files(os.fspath(trial_dir), _entries)]

    def read_trials(self, job_dir: Path, trial_dirs: list[Path] | None,
                    known: Mapping[str, Any] | None = None) -> JobView:
        """The job with only ``trial_dirs`` read in full (their siblings for identity only)."""
        job_dir = Path(job_dir)
        return read_job(SafeTree(job_dir), job_dir, None if trial_dirs is None else {os.fspath(p) for p in trial_dirs},
                        known)

    def log_files(self, trial: TrialView) -> dict[str, Path]:
        """``copilot_events`` (the session log with most events) and ``atif`` when present."""
        tree = SafeTree(trial.path, quiet=True)
        out: dict[str, Path] = {}
        logs = copilot.session_logs(tree, trial.path / "agent")
        if logs:
            out["copilot_events"] = max(logs, key=lambda p: p.stat().st_size)
        if tree.is_file(trial.path / "agent" / "trajectory.json"):
            out["atif"] = trial.path / "agent" / "trajectory.json"
        return out

    def output_files(self, trial: TrialView) -> dict[str, Path]:
        """``verifier/test-stdout.txt`` and the agent's own log (``agent/<agent>.txt``, else the last command's stdout)."""
        agent_dir = trial.path / "agent"
        logs = sorted(p for p in _txt_files(agent_dir) if p.name != "trajectory.json")
        if not logs:
            logs = sorted(_txt_files(agent_dir, "command-*/stdout.txt"))
        out = {"verifier_output": trial.path / "verifier" / "test-stdout.txt"}
        if logs:
            out["agent_output"] = logs[-1]
        return out

    def read(self, path: Path) -> list[JobView]:
        path = Path(path)
        if not path.is_dir():
            raise SourceError("not a directory", path)
        if is_trial_dir(SafeTree(path), path):
            job = read_job(SafeTree(path.parent), path.parent)
            job.trials = [t for t in job.trials if t.path == path]
            return [job]
        tree = SafeTree(path)
        return [read_job(tree, j) for j in self._jobs(tree, path)]

    def stream(self, path: Path) -> list[TrialStream]:
        """Like :meth:`read`, each trial read when asked (SFT conversion of big jobs)."""
        path = Path(path)
        if not path.is_dir():
            raise SourceError("not a directory", path)
        if is_trial_dir(SafeTree(path), path):
            return [stream_job(path.parent, path.parent, [path.name])]
        return [stream_job(path, j) for j in self._jobs(SafeTree(path), path)]

    @staticmethod
    def _jobs(tree: SafeTree, path: Path) -> list[Path]:
        jobs = _job_dirs(tree, path)
        if not jobs:
            raise SourceError("not a Harbor/Pier root, job or trial directory", path)
        return jobs


def _txt_files(directory: Path, pattern: str = "*.txt") -> list[Path]:
    """Regular files matching ``pattern`` under ``directory`` (links are not followed)."""
    return [p for p in directory.glob(pattern) if p.is_file() and not p.is_symlink()]


def _entries(directory: str) -> dict[str, os.DirEntry[str]]:
    """The entries of ``directory`` by name (none when it is missing or not a directory)."""
    try:
        with os.scandir(directory) as it:
            return {e.name: e for e in it}
    except OSError:
        return {}
