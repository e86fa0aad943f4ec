"""One block run: prepare the job, run it, then the post-run steps (summary, analysis, ...).

Post-run steps are callables; each gets the job setup and outcome and returns a small dict
for the run report. A failing step is reported, never hides the job's results. The built-in
steps are imported here directly; :func:`register_post_run` adds a user's own, as does an
installed package under the entry-point group ``trialbook.post_run``. Steps named in
``FINAL_STEPS`` (the archive, then the artifact store's upload) run after all others, whatever the registration order.
An interrupted run gets only its final steps (it is archived with status ``cancelled``).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trialbook.app.analysis_step import analysis_step
from trialbook.app.archive_step import archive_step
from trialbook.app.sft_step import sft_step
from trialbook.app.store_step import attach_store, store_step
from trialbook.app.summary_step import summary_step
from trialbook.app.velora_output import attach_velora_output, velora_step
from trialbook.errors import TrialbookError
from trialbook.plugins import entry_point_objects
from trialbook.run.agents import get_agent
from trialbook.run.overrides import RunOverrides
from trialbook.run.scheduler import (
    JobCancelled,
    JobOutcome,
    JobSetup,
    ProgressCallback,
    prepare_job,
    run_job,
)
from trialbook.run.session_log import RunSession

_log = logging.getLogger("trialbook.run")

PostRunStep = Callable[[JobSetup, JobOutcome], dict[str, Any] | None]

#: (name, step) pairs run in order after every job: the built-in ones, then those registered.
POST_RUN_STEPS: list[tuple[str, PostRunStep]] = [
    ("analysis", analysis_step),
    ("summary", summary_step),
    ("sft", sft_step),
    ("velora", velora_step),
    ("archive", archive_step),
    ("store", store_step),
]

#: Steps that run after every other one, in this order (the archive must see the others' output;
#: the store uploads the archive too).
FINAL_STEPS: tuple[str, ...] = ("archive", "store")


def register_post_run(name: str) -> Callable[[PostRunStep], PostRunStep]:
    """Decorator adding a post-run step under ``name`` (re-registering replaces it)."""

    def deco(fn: PostRunStep) -> PostRunStep:
        POST_RUN_STEPS[:] = [(n, f) for n, f in POST_RUN_STEPS if n != name]
        POST_RUN_STEPS.append((name, fn))
        return fn

    return deco


@dataclass
class RunReport:
    """What a block run produced."""

    outcome: JobOutcome
    steps: dict[str, Any] = field(default_factory=dict)
    step_errors: dict[str, str] = field(default_factory=dict)


def run_post_steps(setup: JobSetup, outcome: JobOutcome, only: tuple[str, ...] | None = None,
                   ) -> tuple[dict[str, Any], dict[str, str]]:
    """Run every registered post-run step (or those named in ``only``); errors are collected, not raised."""
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    installed = [(n, f) for n, f in entry_point_objects("trialbook.post_run").items()
                 if n not in {name for name, _ in POST_RUN_STEPS}]
    steps = sorted([*POST_RUN_STEPS, *installed], key=lambda s: FINAL_STEPS.index(s[0]) + 1 if s[0] in FINAL_STEPS else 0)
    for name, step in steps:
        if only is not None and name not in only:
            continue
        _log.info("post-run step %s started", name)
        try:
            results[name] = step(setup, outcome)
        except TrialbookError as exc:
            errors[name] = str(exc)
        except Exception as exc:  # noqa: BLE001 - a broken step must not lose the job's results
            errors[name] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
        if name in errors:
            _log.error("post-run step %s failed: %s", name, errors[name])
        else:
            _log.info("post-run step %s finished: %s", name, results[name])
    return results, errors


def preflight(setup: JobSetup) -> None:
    """Every variant's pre-flight check (its model server answers), before any trial starts.

    With SFT conversion on, its tokenizer is loaded too: a wrong name or a Hugging Face
    tokenizer not downloaded fails now, not after the trials.
    """
    for variant in setup.config.variants:
        get_agent(variant.agent).preflight(variant)
    if setup.config.sft_conversion.enabled:
        from trialbook.sft.convert import NO_TOKENIZER
        from trialbook.sft.job import options_from_config
        from trialbook.sft.tokens import get_tokenizer

        tokenizer = options_from_config(setup.config.sft_conversion, setup.block.root).tokenizer
        if tokenizer != NO_TOKENIZER:
            get_tokenizer(tokenizer)


def run_block(config_path: Path, job_name: str | None = None,
              progress: ProgressCallback | None = None,
              on_setup: Callable[[JobSetup], None] | None = None,
              overrides: RunOverrides | None = None) -> RunReport:
    """Run the block's job (new or resumed) and its post-run steps, with session log and monitor."""
    setup = prepare_job(config_path, job_name, overrides)
    attach_velora_output(setup)
    attach_store(setup)
    preflight(setup)
    if on_setup:
        on_setup(setup)
    with RunSession(setup, progress) as session:
        try:
            outcome = run_job(setup, session.progress)
        except JobCancelled as exc:
            session.finish("cancelled")
            if exc.outcome is not None:  # an interrupted run is archived too (status cancelled)
                run_post_steps(setup, exc.outcome, only=FINAL_STEPS)
            raise
        session.finish(outcome.status)
        steps, errors = run_post_steps(setup, outcome)
    return RunReport(outcome, steps, errors)
