"""Conversion of whole jobs of any layout: read trials, feed their ATIF trajectories to :func:`convert`.

Trials without a trajectory (or with one that cannot be read) are counted in lf.stats.json
under ``no_trajectory`` / ``unreadable_trajectory``; cancelled trials are not inputs. Output
goes to ``--out``, else the block's ``sft_data_dir``/<job> for native jobs, else
``./trialbook-sft/<layout>__<job>`` for read-only foreign trees.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from trialbook.config import BlockConfig, SftConversionConfig, load_config
from trialbook.errors import ExitCode, TrialbookError
from trialbook.model.outcome import Outcome
from trialbook.model.trajectory import Trajectory
from trialbook.sft.atif_data import checked_trajectory_data
from trialbook.sft.convert import ConvertOptions, ConvertResult, IndexedItem, convert
from trialbook.sft.inputs import SftInput
from trialbook.sft.tokens import HF_PREFIX
from trialbook.sources.base import JobView, TrialStream, TrialView
from trialbook.sources.registry import detect_layout, get_reader


def options_from_config(cfg: SftConversionConfig, root: Path | None = None, **overrides: object) -> ConvertOptions:
    """ConvertOptions from a block's ``sft_conversion`` section; non-None ``overrides`` win.

    A relative ``hf:PATH`` tokenizer in the config is relative to the block directory ``root``
    when that path exists there (else it stays a path here or a model name for the HF cache).
    """
    values: dict[str, object] = {
        "min_reward": cfg.min_reward, "resolved_only": cfg.resolved_only, "max_tokens": cfg.max_tokens,
        "per_task_cap": cfg.per_task_cap, "thinking": cfg.thinking, "train": dict(cfg.train) or None,
    }
    if cfg.tokenizer:
        values["tokenizer"] = _block_relative_tokenizer(cfg.tokenizer, root)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return ConvertOptions(**values)  # type: ignore[arg-type]


def _block_relative_tokenizer(name: str, root: Path | None) -> str:
    """``hf:RELATIVE`` made absolute against the block directory when it exists there."""
    spec = name.removeprefix(HF_PREFIX)
    if root is None or spec == name or not spec or Path(spec).expanduser().is_absolute():
        return name
    candidate = root / spec
    return f"{HF_PREFIX}{candidate.resolve()}" if candidate.exists() else name


class JobInputs:
    """A job's trials as conversion inputs by position (:class:`~trialbook.sft.convert.IndexedInputs`):
    a trajectory is loaded only when its position is asked for, in whichever process converts it.

    Given a :class:`~trialbook.sources.base.TrialStream`, the trial's record too is read only
    then, and released after: memory does not grow with the number of trials.
    """

    def __init__(self, job: JobView | TrialStream) -> None:
        if isinstance(job, TrialStream):
            self.job, self._count, self._trial = job.job, len(job), job.trial
        else:
            self.job, self._count, self._trial = job, len(job.trials), job.trials.__getitem__

    def __len__(self) -> int:
        return self._count

    def get(self, index: int) -> IndexedItem:
        """The input of trial ``index``; (task, variant, reason) without a usable trajectory; None
        for a trial that is no input (cancelled, unfinished, or not listed by its layout)."""
        view = self._trial(index)
        if view is None:
            return None
        rec = view.record
        if rec.outcome == Outcome.CANCELLED or rec.status != "finished":
            return None
        try:
            traj = _trajectory(view)
        except TrialbookError:
            return (rec.task, rec.variant, "unreadable_trajectory")
        if traj is None:
            traj = _from_litellm_log(view, self.job.name)
        if traj is None:
            return (rec.task, rec.variant, "no_trajectory")
        return SftInput(
            id=f"{self.job.name}/{rec.trial_name}", job=self.job.name, task=rec.task, variant=rec.variant,
            attempt=rec.attempt, score=rec.reward, resolved=rec.outcome == Outcome.RESOLVED,
            layout=view.layout, trial_path=str(view.path), trajectory=traj,
        )


def sft_inputs(job: JobView, unavailable: list[tuple[str, str, str]]) -> Iterator[SftInput]:
    """Yield one input per trial with a trajectory; note the others in ``unavailable``."""
    inputs = JobInputs(job)
    for i in range(len(inputs)):
        item = inputs.get(i)
        if isinstance(item, tuple):
            unavailable.append(item)
        elif item is not None:
            yield item


def _trajectory(view: TrialView) -> Trajectory | dict[str, Any] | None:
    """The trial's ATIF trajectory: its JSON data when :mod:`trialbook.sft.atif_data` vouches for
    it (no models built), else validated into the models (the same result, or the same error)."""
    if view.load_trajectory_data is not None:
        data = view.load_trajectory_data()
        if data is None:
            return None
        checked = checked_trajectory_data(data)
        if checked is not None:
            return checked
    return view.load_trajectory() if view.load_trajectory else None


def _from_litellm_log(view: TrialView, job: str) -> Trajectory | None:
    """A trial without ATIF: its trajectory rebuilt from ``agent/litellm-trajectory.jsonl``, if there is one.

    The LiteLLM log is the primary output the trajgen block format names for conversion.
    """
    from trialbook.model.litellm_line import read_litellm_log
    from trialbook.run.trajectory_writer import trajectory_from_log

    path = view.path / "agent" / "litellm-trajectory.jsonl"
    if path.is_symlink() or not path.is_file():
        return None
    try:
        lines = read_litellm_log(path)
        if not lines:
            return None
        return trajectory_from_log(lines, agent=view.record.agent or "unknown", model=view.record.model,
                                   session_id=f"{job}/{view.record.trial_name}")
    except (TrialbookError, ValueError):
        return None


def dataset_name_for(job: str) -> str:
    """A LLaMA-Factory dataset key derived from the job name (letters, digits, '_')."""
    return "trialbook_" + re.sub(r"[^A-Za-z0-9_]+", "_", job).strip("_")


def _block_config(job_dir: Path) -> tuple[Path, BlockConfig] | None:
    """The block whose jobs directory holds ``job_dir``, if any."""
    for d in job_dir.resolve().parents:
        cfg_path = d / "config.yaml"
        if cfg_path.is_file() and (d / "artifacts").is_dir():
            try:
                cfg = load_config(cfg_path)
            except TrialbookError:
                return None
            if cfg.output_dir(d) == job_dir.resolve().parent:
                return d, cfg
            return None
    return None


def default_out_dir(job: JobView) -> Path:
    """Where a job's SFT data goes when ``--out`` is not given (see the module docstring)."""
    found = _block_config(job.path) if job.trialbook_job else None
    if found is not None:
        root, cfg = found
        rel = cfg.runtime_info.output.sft_data_dir or "artifacts/sft_data"
        return root / rel / job.name
    return Path.cwd() / "trialbook-sft" / f"{job.layout}__{job.name}"


#: The files a conversion writes; their presence marks an earlier conversion.
SFT_FILES = ("im.jsonl", "lf.json", "lf.stats.json")


class OverwriteRefusedError(TrialbookError):
    """A conversion would replace an earlier one (nothing was written)."""

    exit_code = ExitCode.CONFLICT


def convert_job(path: Path, *, layout: str | None = None, out: Path | None = None,
                options: ConvertOptions | None = None, overwrite: bool = False, workers: int | None = None,
                token_cache: Path | None = None) -> list[ConvertResult]:
    """Convert every job found at ``path``; returns one result per job.

    An earlier conversion in a target directory is refused (nothing is written) unless
    ``overwrite``: SFT data may have been curated or already trained on. ``workers``: converting
    processes (None: one per CPU; the output is the same for any number). ``token_cache``: the
    SQLite file of token counts by content hash (see :mod:`trialbook.sft.token_cache`).
    """
    from trialbook.sft.parallel import default_workers

    path = Path(path)
    reader = get_reader(layout or detect_layout(path))
    streams = reader.stream(path)  # trials read one at a time where the layout allows it
    sources: list[JobView] | list[TrialStream] = streams if streams is not None else reader.read(path)
    jobs = [s.job if isinstance(s, TrialStream) else s for s in sources]
    targets = []
    for i, job in enumerate(jobs):
        target = out if out is not None else default_out_dir(job)
        targets.append(out / job.name if out is not None and i > 0 else target)
    if not overwrite:
        earlier = [t for t in targets if any((t / name).exists() for name in SFT_FILES)]
        if earlier:
            raise OverwriteRefusedError(f"an earlier conversion is there ({', '.join(SFT_FILES)}); "
                                        "use --force to replace it, or --out DIR", earlier[0])
    results = []
    for job, source, target in zip(jobs, sources, targets, strict=True):
        results.append(convert(JobInputs(source), target, options, dataset_name_for(job.name),
                               workers=default_workers() if workers is None else workers, token_cache=token_cache))
    return results
