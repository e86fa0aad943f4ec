"""The reader interface every layout implements, and layout detection.

A reader turns a directory into :class:`JobView` objects whose trials are
:class:`TrialView` objects: a :class:`TrialRecord` (identity, outcome, rewards, usage,
counts) plus lazy access to the trial's ATIF trajectory. Listing reads small files only;
the trajectory is parsed when ``TrialView.trajectory()`` is first called.

Trials of a job are ordered by (task, variant, attempt, trial_name): that order is the
stable 1..n numbering ``trialbook analyze --trial N`` uses.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from trialbook.errors import SourceError
from trialbook.model.swe_eval import SweEval
from trialbook.model.trajectory import Trajectory
from trialbook.model.trial import TrialRecord


@dataclass
class TrialView:
    """One trial of any layout: its normalised record, where it lives, and its trajectory on demand."""

    record: TrialRecord
    path: Path
    layout: str
    load_trajectory: Callable[[], Trajectory | None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: The trajectory file's parsed JSON, not validated (None: no file), for a consumer that
    #: checks the data itself and falls back to ``load_trajectory`` (SFT conversion); unset
    #: when the layout's trajectory is not one ATIF file.
    load_trajectory_data: Callable[[], Any] | None = None
    _trajectory: Trajectory | None = field(default=None, repr=False)
    _loaded: bool = field(default=False, repr=False)

    def trajectory(self) -> Trajectory | None:
        """The ATIF trajectory (parsed once, on first use); None when the trial has none."""
        if not self._loaded:
            self._trajectory = self.load_trajectory() if self.load_trajectory else None
            self._loaded = True
        return self._trajectory

    @property
    def sort_key(self) -> tuple[str, str, int, str]:
        r = self.record
        return (r.task, r.variant, r.attempt, r.trial_name)


@dataclass
class JobView:
    """One job of any layout, with its trials in the stable order (see module docstring)."""

    name: str
    path: Path
    layout: str
    trials: list[TrialView]
    started_at: str | None = None
    finished_at: str | None = None
    status: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: Written by trialbook's own runner: derived outputs (analysis, summaries, SFT data) go
    #: inside the job and its block's config applies. Other harnesses' trees are left untouched.
    trialbook_job: bool = False

    def __post_init__(self) -> None:
        self.trials.sort(key=lambda t: t.sort_key)

    @property
    def records(self) -> list[TrialRecord]:
        return [t.record for t in self.trials]


@dataclass
class TrialStream:
    """A job whose trials are listed by directory name but read one at a time, by position: for
    consumers that must not hold every trial's record at once (SFT conversion of a big job).

    ``job`` carries the job's own fields and no trials; ``read_trial`` reads the trial of one
    name, or gives None for one the layout would not list (a link leaving the tree). Positions
    follow the names, not the (task, variant, attempt) order of :class:`JobView`.
    """

    job: JobView
    names: list[str]
    read_trial: Callable[[str], TrialView | None]

    def __len__(self) -> int:
        return len(self.names)

    def trial(self, index: int) -> TrialView | None:
        """The trial at ``index``, read now (nothing is kept)."""
        return self.read_trial(self.names[index])


class SourceReader(ABC):
    """A layout: how to recognise it and how to read it."""

    name: ClassVar[str]
    #: Other names accepted by ``--layout`` (e.g. ``pier`` for ``harbor``).
    aliases: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def detect(self, path: Path) -> bool:
        """Cheap check (a few stats/small reads) whether ``path`` is a root, job or trial of this layout."""

    @abstractmethod
    def read(self, path: Path) -> list[JobView]:
        """Every job under ``path`` (a single job dir gives one). Raises SourceError on bad input."""

    def stream(self, path: Path) -> list[TrialStream] | None:
        """Every job under ``path`` with its trials listed, not read (see :class:`TrialStream`);
        None (the default) when this layout reads whole jobs only, e.g. because a trial's
        record depends on its siblings. Same jobs and trials as :meth:`read`."""
        return None

    # -- optional hooks for incremental indexing (trialbook.index) --------------------------
    # The defaults are correct for any layout but read whole jobs; a layout overrides them to
    # let ``trialbook reindex`` re-read only what changed.

    def job_dirs(self, path: Path) -> list[Path]:
        """Job directories under ``path``, found without reading trials (default: via ``read``)."""
        return [job.path for job in self.read(path)]

    def trial_dirs(self, job_dir: Path) -> list[Path]:
        """Trial paths of the job at ``job_dir`` (default: via ``read``)."""
        return sorted({t.path for job in self.read(job_dir) if job.path == job_dir for t in job.trials})

    def trial_files(self, trial_dir: Path) -> list[Path]:
        """Paths whose (size, mtime) change means the trial must be read again.

        Default: the trial path itself (a directory's mtime changes when entries come or go)
        and the regular files directly inside it.
        """
        return [trial_dir, *_files_in(trial_dir)]

    def job_files(self, job_dir: Path) -> list[Path]:
        """Paths whose change means the job-level fields (times, status) must be read again.

        Default: the regular files directly in ``job_dir``, except the summaries trialbook derives.
        """
        return [p for p in _files_in(job_dir) if p.name not in ("summary.json", "summary.md")]

    def read_trials(self, job_dir: Path, trial_dirs: list[Path] | None,
                    known: Mapping[str, Any] | None = None) -> JobView:
        """The job at ``job_dir`` with only the trials at ``trial_dirs`` (None: all) read.

        ``known``: for trials not read, the identities their ``TrialView.extra["identity"]`` held
        when last read (stored by the index), by trial path as a string, for a layout whose
        trials depend on their siblings.
        Default: read the whole job and keep those trials.
        """
        jobs = [job for job in self.read(job_dir) if job.path == job_dir]
        if len(jobs) != 1:
            raise SourceError(f"{self.name} reader: expected one job here, found {len(jobs)}", job_dir)
        job = jobs[0]
        if trial_dirs is not None:
            wanted = set(trial_dirs)
            job.trials = [t for t in job.trials if t.path in wanted]
        return job

    def log_files(self, trial: TrialView) -> dict[str, Path]:
        """Raw logs of a trial for ``trialbook analyze``, keyed ``copilot_events`` / ``atif`` / ``litellm``.

        Only existing files are returned. Default: none (analysis then uses ``trial.trajectory()``).
        """
        return {}

    def evaluation_dirs(self, trial: TrialView) -> list[Path]:
        """Directories that may hold the trial's SWE grading files (``report.json``, ``patch.diff``),
        most specific first. Default: :func:`default_evaluation_dirs`."""
        return default_evaluation_dirs(trial)

    def output_files(self, trial: TrialView) -> dict[str, Path]:
        """What the verifier and the agent printed, keyed ``verifier_output`` / ``agent_output``.

        ``trialbook analyze`` shows their last lines. Paths may not exist. Default: none.
        """
        return {}


def default_evaluation_dirs(trial: TrialView) -> list[Path]:
    """Where a layout's grading files usually are: beside the report its verdict came from, in the
    trial's directory, or in its ``evaluation/``."""
    source = SweEval.of(trial.record).eval_source
    dirs = [Path(source).parent] if source is not None and source.endswith("report.json") else []
    return [*dirs, trial.path, trial.path / "evaluation"]


def _files_in(directory: Path) -> list[Path]:
    """Regular files directly in ``directory`` (sorted; none when it is not a directory)."""
    try:
        with os.scandir(directory) as it:
            return sorted(Path(e.path) for e in it if e.is_file(follow_symlinks=False))
    except (NotADirectoryError, FileNotFoundError, PermissionError):
        return []
