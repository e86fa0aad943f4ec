"""``SweTask``: a SWE-style instance as a runner task, graded the way the swebench harness grades.

Seeding: the trial's ``/app`` is a fresh checkout of the instance's repository at
``base_commit`` (from the block's ``repos/`` cache; a clone failure raises, so that trial
is an ``infra_error`` and the job goes on). The oracle's ``/solution/solve.sh`` applies
the gold patch; other agents edit the checkout.

Grading (``verify``), every step logged to ``evaluation/run_instance.log``:

1. The trial's patch (``evaluation/patch.diff``) is the checkout's diff against
   ``base_commit``, untracked files included, the files ``test_patch`` touches excluded.
   An agent that submits a patch rather than editing (a predictions replayer, a model
   whose answer is a diff) writes it to ``/logs/agent/model.patch``; that file, when
   present, is the patch instead (unfiltered, as swebench takes a ``model_patch``).
2. Empty patch: not graded (as swebench), ``report.json`` has ``patch_exists: false``,
   outcome ``unresolved`` with reason "empty patch".
3. The patch is applied to a second fresh checkout at ``base_commit`` (``git apply``,
   then ``patch --fuzz=5``), so the grade depends on ``patch.diff`` alone and can be
   reproduced from it. If it does not apply: ``patch_successfully_applied: false``,
   outcome ``unresolved``, the reason quoting git.
4. ``eval.sh`` restores the test files, applies ``test_patch`` and runs the test command
   between the markers; its output is ``evaluation/test_output.txt``. A ``test_patch``
   that does not apply is a ``verifier_error`` (the instance is broken); a run past the
   verifier timeout is a ``timeout``. Neither writes ``report.json`` (swebench writes
   none for them either; the job summary counts them as errors).
5. ``report.json`` is built by :mod:`trialbook.grading` from the log and the test lists;
   reward 1.0 when resolved (FULL), else 0.0, with the FAIL_TO_PASS / PASS_TO_PASS
   success fractions as extra rewards.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from trialbook.grading import (
    assess_test_log,
    build_instance_report,
    detect_benchmark_type,
    resolution_status,
)
from trialbook.jsonio import atomic_write_bytes, atomic_write_text, dumps
from trialbook.layout.paths import TrialPaths
from trialbook.model.outcome import Outcome
from trialbook.model.trial import utc_now
from trialbook.model.verdict import Verdict
from trialbook.run.environments.base import Environment
from trialbook.run.swe import scripts
from trialbook.run.swe.instances import (
    SweInstance,
    load_swe_instances,
    resolve_dockerfile,
    resolve_repo,
)
from trialbook.run.swe.repos import RepoCache
from trialbook.run.tasks import Task

#: A patch the agent hands in instead of (or besides) editing the checkout, inside the sandbox.
MODEL_PATCH = "model.patch"
#: Seconds allowed for computing the diff and for applying the patch (each).
STEP_TIMEOUT_S = 300.0


class RunLog:
    """Appends timestamped lines to ``run_instance.log`` as grading goes (so a crash leaves the steps so far)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("", encoding="utf-8")

    def __call__(self, message: str, output: str | None = None) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(f"{utc_now()} {message}\n")
            if output and output.strip():
                fh.write("".join(f"    {line}\n" for line in output.rstrip("\n").splitlines()))


@dataclass
class SweTask(Task):
    """One SWE-style instance; see the module docstring for how it is seeded and graded."""

    instance: SweInstance | None = None
    #: The repository's address: ``instance.repo`` resolved by :func:`resolve_repo`.
    repo_url: str = ""
    repos: RepoCache | None = None
    #: Where the oracle's solution directory is materialised (created on first use).
    solution_root: Path | None = None
    grading: str = "swe"
    #: In a docker/podman image too, ``/app`` is the checkout (the image gives the tools).
    seed_in_image: ClassVar[bool] = True

    @property
    def inst(self) -> SweInstance:
        assert self.instance is not None, "SweTask needs an instance"
        return self.instance

    def seed_workspace(self, app_dir: Path) -> None:
        """Check out the repository at ``base_commit`` into ``app_dir`` (cloning it into the cache once)."""
        assert self.repos is not None
        self.repos.checkout(self.repo_url, self.inst.base_commit, app_dir)

    @property
    def solution_dir(self) -> Path | None:
        """A directory with ``gold.patch`` and a ``solve.sh`` applying it, or None without a gold patch."""
        if self.inst.patch is None or self.solution_root is None:
            return None
        sol = self.solution_root / self.name
        gold, solve = sol / "gold.patch", sol / "solve.sh"
        if not gold.is_file() or gold.read_text(encoding="utf-8") != self.inst.patch:
            atomic_write_text(gold, self.inst.patch)
        if not solve.is_file():
            atomic_write_text(solve, scripts.solve_script())
        return sol

    def _row(self) -> dict[str, Any]:
        """The instance row as validated; the image keys only when set (older rows hash as they did)."""
        row = self.inst.model_dump(mode="json")
        return {k: v for k, v in row.items() if not (k in ("image_name", "dockerfile") and v is None)}

    def content_hash(self) -> str:
        """SHA-256 of the instance row as validated, in canonical JSON (so it does not depend on where the block is)."""
        row = self._row()
        return hashlib.sha256(json.dumps(row, sort_keys=True).encode()).hexdigest()

    def content_files(self) -> dict[str, str]:
        """One entry per field of the instance row, so a resume check names what changed."""
        row = self._row()
        return {key: hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
                for key, value in sorted(row.items())}

    async def verify(self, paths: TrialPaths, environment: Environment, timeout_s: float) -> Verdict:
        """Grade the trial's checkout (module docstring, steps 1-5)."""
        inst = self.inst
        log = RunLog(paths.run_instance_log)
        log(f"instance {inst.instance_id}: repo {self.repo_url}, base_commit {inst.base_commit}, "
            f"log parser {inst.log_parser}")
        assert self.repos is not None
        _cache, sha = await asyncio.to_thread(self.repos.ensure, self.repo_url, inst.base_commit)
        atomic_write_text(paths.eval_script, scripts.eval_script(inst, sha))
        patch = await self._patch(paths, environment, sha, log)
        if isinstance(patch, Verdict):
            return patch
        if not patch:
            log("empty patch: nothing to grade (the tests are not run)")
            return self._graded(paths, log, patch="", applied=False, test_output=None,
                                reason="empty patch")
        log(f"fresh checkout at {sha} for grading")
        eval_env = await environment.fresh()
        try:
            await eval_env.upload(paths.evaluation_dir, scripts.EVAL_MOUNT)
            return await self._grade(paths, eval_env, patch, sha, timeout_s, log)
        finally:
            await eval_env.stop()

    async def _grade(self, paths: TrialPaths, eval_env: Environment, patch: str, sha: str, timeout_s: float,
                     log: RunLog) -> Verdict:
        """Steps 3-5 in the fresh environment: apply the patch, run eval.sh, build the report."""
        inst = self.inst
        applied = await self._apply(paths, eval_env, log)
        if isinstance(applied, Verdict):
            return applied
        if applied is not True:
            return self._graded(paths, log, patch=patch, applied=False, test_output=None,
                                reason=f"patch does not apply to a fresh checkout at {sha[:12]}: {applied}")
        log(f"running eval.sh (timeout {timeout_s:g}s): {inst.test_command()}")
        paths.test_output.unlink(missing_ok=True)
        res = await eval_env.exec(["bash", f"{scripts.EVAL_MOUNT}/eval.sh"], timeout_s=timeout_s,
                                  stdout_path=paths.test_output)
        output = _read_output(paths.test_output)
        if res.timed_out:
            log(f"eval.sh timed out after {timeout_s:g}s; no report is written")
            return Verdict(outcome=Outcome.TIMEOUT, reason=f"test run timed out after {timeout_s:g}s",
                           timed_out=True, duration_s=res.duration_s,
                           details={"instance_id": inst.instance_id})
        log(f"eval.sh exited with code {res.exit_code} in {res.duration_s:.1f}s")
        if res.exit_code == scripts.TEST_PATCH_FAILED_EXIT and scripts.TEST_PATCH_FAILED in output:
            tail = output.strip().splitlines()[-3:]
            log("test_patch does not apply: the instance is broken; no report is written", "\n".join(tail))
            return Verdict(outcome=Outcome.VERIFIER_ERROR, exit_code=res.exit_code,
                           reason=f"test_patch of {inst.instance_id} does not apply at {sha[:12]}",
                           details={"instance_id": inst.instance_id})
        return self._graded(paths, log, patch=patch, applied=True, test_output=output,
                            reason=None, exit_code=res.exit_code, duration_s=res.duration_s)

    async def _patch(self, paths: TrialPaths, environment: Environment, sha: str, log: RunLog) -> str | Verdict:
        """Write ``patch.diff`` (the agent's ``model.patch``, else the checkout's diff) and return its text."""
        submitted = paths.agent_dir / MODEL_PATCH  # the harvested copy: a regular file or nothing
        probe = paths.evaluation_dir / ".model-patch-probe.txt"
        planted = await environment.exec(["bash", "-c", f"test -L /logs/agent/{MODEL_PATCH}"], timeout_s=60,
                                         stdout_path=probe)
        probe.unlink(missing_ok=True)
        if planted.exit_code == 0 or submitted.is_symlink():  # never followed; say why there is no patch
            log(f"/logs/agent/{MODEL_PATCH} is a symbolic link: refused")
            return Verdict(outcome=Outcome.VERIFIER_ERROR,
                           reason=f"/logs/agent/{MODEL_PATCH} is a symbolic link; submit a regular file")
        if submitted.is_file():
            patch = submitted.read_text(encoding="utf-8", errors="surrogateescape")
            log(f"patch: the agent's /logs/agent/{MODEL_PATCH} ({len(patch.splitlines())} lines)")
            atomic_write_text(paths.patch, patch)
            return patch
        excluded = scripts.excluded_files(self.inst)
        paths.patch.unlink(missing_ok=True)
        errors = paths.evaluation_dir / ".diff-stderr.txt"
        errors.unlink(missing_ok=True)
        res = await environment.exec(["bash", "-c", scripts.diff_script(sha, excluded)], timeout_s=STEP_TIMEOUT_S,
                                     stdout_path=paths.patch, stderr_path=errors)
        stderr = errors.read_text(encoding="utf-8", errors="replace") if errors.exists() else ""
        errors.unlink(missing_ok=True)
        if res.timed_out or res.exit_code != 0:
            why = "timed out" if res.timed_out else f"exit code {res.exit_code}"
            log(f"cannot compute the patch from the checkout ({why})", stderr)
            detail = next((ln for ln in reversed(stderr.splitlines()) if ln.strip()), why)
            return Verdict(outcome=Outcome.VERIFIER_ERROR,
                           reason=f"cannot compute the patch from the checkout: {detail}"[:500])
        patch = paths.patch.read_text(encoding="utf-8", errors="surrogateescape")
        log(f"patch: git diff of the checkout against {sha[:12]} ({len(patch.splitlines())} lines), "
            f"excluding the test files {excluded}")
        return patch

    async def _apply(self, paths: TrialPaths, eval_env: Environment, log: RunLog) -> bool | str | Verdict:
        """Apply ``patch.diff`` in the fresh checkout: True, or git's reason it does not apply."""
        out = paths.evaluation_dir / ".apply-output.txt"
        out.unlink(missing_ok=True)
        res = await eval_env.exec(["bash", "-c", scripts.apply_script()], timeout_s=STEP_TIMEOUT_S,
                                  stdout_path=out)
        text = out.read_text(encoding="utf-8", errors="replace") if out.exists() else ""
        out.unlink(missing_ok=True)
        log(f"applying patch.diff: exit code {res.exit_code}", text)
        if res.timed_out:
            return Verdict(outcome=Outcome.VERIFIER_ERROR, reason="applying the patch timed out")
        if res.exit_code == 0:
            return True
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        return next((ln for ln in lines if ln.startswith(("error:", "fatal:"))), "git apply failed")

    def _graded(self, paths: TrialPaths, log: RunLog, *, patch: str, applied: bool,
                test_output: str | None, reason: str | None, exit_code: int | None = None,
                duration_s: float | None = None) -> Verdict:
        """Build and write ``report.json`` and turn it into the trial's verdict."""
        inst = self.inst
        report = build_instance_report(
            inst.instance_id, patch=patch, patch_applied=applied, test_output=test_output,
            fail_to_pass=inst.FAIL_TO_PASS, pass_to_pass=inst.PASS_TO_PASS, parser=inst.log_parser)
        write_report(paths.swe_report, report)
        entry = report[inst.instance_id]
        details: dict[str, Any] = {
            "instance_id": inst.instance_id,
            "patch_exists": entry["patch_exists"],
            "patch_successfully_applied": entry["patch_successfully_applied"],
        }
        rewards = {"reward": 1.0 if entry["resolved"] else 0.0}
        if "tests_status" in entry:
            status = entry["tests_status"]
            resolution = resolution_status(status)
            details["resolution"] = resolution
            details["counts"] = {k: {s: len(v[s]) for s in ("success", "failure")} for k, v in status.items()}
            for key, name in (("FAIL_TO_PASS", "f2p"), ("PASS_TO_PASS", "p2p")):
                n = len(status[key]["success"]) + len(status[key]["failure"])
                if n:
                    rewards[name] = len(status[key]["success"]) / n
            c = details["counts"]
            reason = reason or (
                f"resolution {resolution}: FAIL_TO_PASS {c['FAIL_TO_PASS']['success']}/"
                f"{sum(c['FAIL_TO_PASS'].values())}, PASS_TO_PASS {c['PASS_TO_PASS']['success']}/"
                f"{sum(c['PASS_TO_PASS'].values())} passed")
        elif reason is None and test_output is not None:
            reason = f"tests not gradeable: {assess_test_log(test_output, inst.log_parser).reason}"
        details["resolution"] = details.get("resolution", "NO")
        log(f"report: resolved={entry['resolved']} ({reason})")
        return Verdict(
            outcome=Outcome.RESOLVED if entry["resolved"] else Outcome.UNRESOLVED,
            reward=rewards["reward"], rewards=rewards, source="report.json", reason=reason,
            exit_code=exit_code, duration_s=duration_s, details=details,
        )


def write_report(path: Path, report: dict[str, Any]) -> None:
    """Write a report.json atomically, keys in spec 002's order (patch_is_None first) rather than sorted."""
    atomic_write_bytes(path, dumps(report, sort_keys=False) + b"\n")


def dataset_label(instances: str, dataset_name: str | None) -> str:
    """The name the benchmark type is detected from: ``tasks.dataset_name``, else the instance file's name."""
    return dataset_name or Path(instances).name


def load_swe_tasks(instances_file: Path, *, include: list[str], exclude: list[str], repos_dir: Path,
                   solution_root: Path, dataset_name: str, need_solution: bool = False) -> list[SweTask]:
    """Every selected instance of the file as a task; a broken row raises TaskError naming it."""
    cache = RepoCache(repos_dir)
    benchmark = detect_benchmark_type(dataset_name)
    tasks = []
    base_dir = instances_file.resolve().parent
    for inst in load_swe_instances(instances_file, include, exclude, need_gold_patch=need_solution):
        url = resolve_repo(inst.repo, base_dir)
        metadata = {**inst.extras, "repo": url, "base_commit": inst.base_commit,
                    "benchmark_type": benchmark, "dataset_name": dataset_name}
        tasks.append(SweTask(name=inst.instance_id, instruction=inst.problem_statement, metadata=metadata,
                             verifier_timeout_s=inst.timeout_s, source_dir=base_dir,
                             instance=inst, repo_url=url, repos=cache, solution_root=solution_root,
                             image_name=inst.image_name, dockerfile=resolve_dockerfile(inst, instances_file)))
    return tasks


#: The most of a test log graded (a runaway test may print without end).
MAX_GRADED_OUTPUT_BYTES = 50 * 1024 * 1024


def _read_output(path: Path) -> str:
    """The test output, at most :data:`MAX_GRADED_OUTPUT_BYTES` of it (never the whole of a huge file)."""
    with open(path, "rb") as fh:
        return fh.read(MAX_GRADED_OUTPUT_BYTES).decode("utf-8", errors="replace")
