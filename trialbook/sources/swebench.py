"""Reader of SWE-bench evaluation logs (the ``swebench`` harness's ``run_evaluation`` output).

::

    <base>/                                         where swebench ran (or any level below)
      <model>.<run_id>.json                         run summary: submitted/resolved/empty_patch/error ids
      logs/run_evaluation/<run_id>/                 -> one job per run_id
        <model>/                                    -> variant (model_name_or_path with "/" as "__")
          <instance_id>/                            -> task (attempt 1)
            report.json test_output.txt patch.diff run_instance.log eval.sh

Every instance the summary lists is a trial, with or without a log dir. Outcomes:
a report -> resolved / unresolved; in ``empty_patch_ids`` -> unresolved ("empty patch");
a log dir without report -> ``verifier_error`` with the harness failure found in
run_instance.log (a patch that failed to apply, tests that timed out, ...); listed as
error or incomplete in the summary only -> ``verifier_error``. There is no agent trajectory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trialbook.errors import SourceError
from trialbook.model.swe_eval import SweEval
from trialbook.model.trial import TrialRecord
from trialbook.sources.base import JobView, SourceReader, TrialView
from trialbook.sources.safe import SafeTree
from trialbook.sources.swebench_logs import (
    InstanceEval,
    evaluations,
    find_run_evaluation,
    model_dirs,
    model_name,
)


def _view(ev: InstanceEval, model_dir: str, summary_path: Path | None) -> TrialView:
    extra: dict[str, Any] = {"layout": "swebench", "run_id": ev.run_id, "model_dir": model_dir,
                             "has_log_dir": ev.log_dir is not None,
                             "patch_empty": None if ev.patch is None else not ev.patch.strip()}
    if summary_path is not None:
        extra["summary"] = str(summary_path)
    SweEval(eval_source=ev.result.source or None, tests_status=ev.result.tests_status,
            report_resolved=ev.result.report_resolved).write_to(extra)
    record = TrialRecord(
        trial_name=f"{ev.instance_id}__{model_dir}__1", job=ev.run_id, task=ev.instance_id, variant=model_dir,
        agent="unknown", model=model_name(model_dir), attempt=1, status="finished", outcome=ev.result.outcome,
        reason=ev.result.reason, reward=ev.result.reward, rewards=ev.result.rewards, extra=extra,
    )
    return TrialView(record=record, path=ev.log_dir or summary_path or Path(ev.run_id), layout="swebench")


class SwebenchReader(SourceReader):
    """SWE-bench ``logs/run_evaluation`` trees with their run summaries."""

    name = "swebench"

    def detect(self, path: Path) -> bool:
        if not path.is_dir() or find_run_evaluation(path) is None:
            return False
        # Imported here, not at module level, so importing this module never registers miniswe first.
        from trialbook.sources.miniswe import is_batch

        return not is_batch(path)  # a mini-swe-agent batch holding its swebench logs is the miniswe layout

    def read(self, path: Path) -> list[JobView]:
        found = find_run_evaluation(path) if path.is_dir() else None
        if found is None:
            raise SourceError("no logs/run_evaluation here", path)
        run_eval, base = found
        tree = SafeTree(base)
        try:
            selection = path.resolve().relative_to(run_eval.resolve()).parts
        except ValueError:
            selection = ()
        want_run, want_model, want_inst = (list(selection) + [None, None, None])[:3]
        jobs = []
        for run in tree.subdirs(run_eval):
            if want_run is not None and run.name != want_run:
                continue
            trials: list[TrialView] = []
            for model in model_dirs(run, base, tree):
                if want_model is not None and model != want_model:
                    continue
                evs, summary_path = evaluations(run, base, model, tree, only=want_inst)
                trials.extend(_view(ev, model, summary_path) for ev in evs)
            jobs.append(JobView(name=run.name, path=run, layout="swebench", trials=trials,
                                meta={"run_id": run.name, "base": str(base)}))
        return jobs
