"""Where every file of a native block lives (DESIGN.md section 2, specs 000 and 001).

::

    <block>/
      config.yaml                     BlockPaths.config
      scripts/                        BlockPaths.scripts
      artifacts/
        jobs/<job>/                   JobPaths
          config.yaml                 JobPaths.config_snapshot
          task_hashes.json            JobPaths.task_hashes (content of every task when the job started)
          results.json | result.json  JobPaths.aggregate (eval | trajgen)
          report.json                 JobPaths.swe_report (SWE-style jobs: first variant, attempt 1)
          reports/<variant>/attempt_<n>/report.json   JobPaths.swe_run_report (jobs of several runs)
          analysis/                   JobPaths.analysis
          .lock                       JobPaths.lock
          .execution-probe            JobPaths.execution_probe (ray backend: is the job dir shared?)
          <trial>/                    TrialPaths
            trial.json
            agent/                    (mounted at /logs/agent)
              litellm-trajectory.jsonl, trajectory.json, stdout.txt, stderr.txt
            evaluation/
              verdict.json, test_output.txt, report.json, patch.diff, eval.sh, run_instance.log
              verifier/               (mounted at /logs/verifier: reward.txt | reward.json)
        sft_data/<job>/               BlockPaths.sft_data
        archives/run_NNN/             BlockPaths.archives
        index.yaml                    BlockPaths.archive_index
      results/index.db                BlockPaths.index_db
      results/parquet/ hf/ trl/       BlockPaths.export_dir(format): default target of `trialbook export`
      dashboard/site/ dashboard/.cache/
      logs/  litellm/  repos/         runtime outputs (gitignored); repos/<slug> cached SWE repositories
      .trialbook/state.json           the live run state (job, progress, counts)
      .trialbook/scratch/             per-trial sandbox scratch dirs, removed after each trial
      .trialbook/agents/<name>-<hash>/ installed agent CLIs (npm/PyPI), mounted read-only into trials
      .trialbook/swe-solutions/<id>/  oracle solution dirs made from SWE instances' gold patches
      .trialbook/cache/token-counts.sqlite  SFT token counts by content hash (BlockPaths.token_cache)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trialbook.errors import TaskError


def _check_component(name: str, what: str) -> str:
    """A name used as one path component must not escape its parent directory."""
    if not name or name in {".", ".."} or "/" in name or "\\" in name or "\x00" in name:
        raise TaskError(f"unsafe {what} name {name!r}: must be a single path component")
    if name.startswith("."):
        raise TaskError(f"unsafe {what} name {name!r}: must not start with '.'")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8 come back from the file system as surrogates
        shown = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise TaskError(f"{what} name {shown!r} is not valid UTF-8; rename it") from None
    if any(ord(c) < 32 for c in name):
        raise TaskError(f"unsafe {what} name {name!r}: control characters")
    return name


def trial_dir_name(task: str, variant: str, attempt: int, *, single: bool) -> str:
    """``<task>`` for single-variant single-attempt jobs (spec 000), else ``<task>__<variant>__<attempt>``."""
    _check_component(task, "task")
    _check_component(variant, "variant")
    return task if single else f"{task}__{variant}__{attempt}"


@dataclass(frozen=True)
class TrialPaths:
    """Files of one trial directory."""

    dir: Path

    @property
    def trial_json(self) -> Path:
        return self.dir / "trial.json"

    @property
    def agent_dir(self) -> Path:
        return self.dir / "agent"

    @property
    def litellm_log(self) -> Path:
        return self.agent_dir / "litellm-trajectory.jsonl"

    @property
    def trajectory(self) -> Path:
        return self.agent_dir / "trajectory.json"

    @property
    def agent_stdout(self) -> Path:
        return self.agent_dir / "stdout.txt"

    @property
    def agent_stderr(self) -> Path:
        return self.agent_dir / "stderr.txt"

    @property
    def instruction(self) -> Path:
        return self.agent_dir / "instruction.md"

    @property
    def evaluation_dir(self) -> Path:
        return self.dir / "evaluation"

    @property
    def verifier_dir(self) -> Path:
        """What the verifier left in ``/logs/verifier`` (reward.txt or reward.json), copied here after it ran."""
        return self.evaluation_dir / "verifier"

    @property
    def verdict(self) -> Path:
        return self.evaluation_dir / "verdict.json"

    @property
    def test_output(self) -> Path:
        return self.evaluation_dir / "test_output.txt"

    @property
    def swe_report(self) -> Path:
        return self.evaluation_dir / "report.json"

    @property
    def patch(self) -> Path:
        return self.evaluation_dir / "patch.diff"

    @property
    def eval_script(self) -> Path:
        return self.evaluation_dir / "eval.sh"

    @property
    def run_instance_log(self) -> Path:
        return self.evaluation_dir / "run_instance.log"


@dataclass(frozen=True)
class JobPaths:
    """Files of one job directory ``artifacts/jobs/<job>/``."""

    dir: Path
    kind: str = "eval"

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def config_snapshot(self) -> Path:
        return self.dir / "config.yaml"

    @property
    def task_hashes(self) -> Path:
        return self.dir / "task_hashes.json"

    @property
    def aggregate(self) -> Path:
        """``results.json`` for eval blocks (spec 000), ``result.json`` for trajgen (spec 001)."""
        return self.dir / ("result.json" if self.kind == "trajgen" else "results.json")

    @property
    def swe_report(self) -> Path:
        return self.dir / "report.json"

    def swe_run_report(self, variant: str, attempt: int) -> Path:
        """The report.json of one (variant, attempt) of a SWE-style job."""
        return self.dir / "reports" / _check_component(variant, "variant") / f"attempt_{attempt}" / "report.json"

    @property
    def analysis(self) -> Path:
        return self.dir / "analysis"

    @property
    def analysis_config(self) -> Path:
        """Written last by job analysis: its presence means ``analysis/`` is complete."""
        return self.analysis / "analysis_config.yaml"

    @property
    def lock(self) -> Path:
        return self.dir / ".lock"

    @property
    def execution_probe(self) -> Path:
        """A token the ray backend writes so each node can check it sees this job directory (shared FS)."""
        return self.dir / ".execution-probe"

    @property
    def summary_json(self) -> Path:
        return self.dir / "summary.json"

    @property
    def summary_md(self) -> Path:
        return self.dir / "summary.md"

    def trial(self, dir_name: str) -> TrialPaths:
        return TrialPaths(self.dir / _check_component(dir_name, "trial"))

    def trial_dirs(self) -> list[Path]:
        """Existing trial directories (those holding a trial.json or looking like one), sorted."""
        if not self.dir.is_dir():
            return []
        return sorted(p for p in self.dir.iterdir() if p.is_dir() and (p / "trial.json").exists())


@dataclass(frozen=True)
class BlockPaths:
    """Files of a block workspace."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def scripts(self) -> Path:
        return self.root / "scripts"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def jobs(self) -> Path:
        return self.artifacts / "jobs"

    @property
    def sft_data(self) -> Path:
        return self.artifacts / "sft_data"

    @property
    def archives(self) -> Path:
        return self.artifacts / "archives"

    @property
    def archive_index(self) -> Path:
        return self.artifacts / "index.yaml"

    @property
    def results_dir(self) -> Path:
        return self.root / "results"

    @property
    def index_db(self) -> Path:
        return self.results_dir / "index.db"

    def export_dir(self, fmt: str) -> Path:
        """Where ``trialbook export --format FMT`` writes by default (derived, rebuildable)."""
        return self.results_dir / _check_component(fmt, "export format")

    @property
    def dashboard_site(self) -> Path:
        return self.root / "dashboard" / "site"

    @property
    def dashboard_cache(self) -> Path:
        return self.root / "dashboard" / ".cache"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def litellm(self) -> Path:
        return self.root / "litellm"

    @property
    def repos(self) -> Path:
        return self.root / "repos"

    @property
    def scratch(self) -> Path:
        return self.root / ".trialbook" / "scratch"

    @property
    def agent_cache(self) -> Path:
        """Installed agent CLIs, one directory per install recipe (run/agents/install.py)."""
        return self.root / ".trialbook" / "agents"

    @property
    def state(self) -> Path:
        """The live run state (config.yaml's ``status:`` section is its snapshot)."""
        return self.root / ".trialbook" / "state.json"

    @property
    def config_lock(self) -> Path:
        return self.root / ".trialbook" / "config.lock"

    @property
    def swe_solutions(self) -> Path:
        return self.root / ".trialbook" / "swe-solutions"

    @property
    def token_cache(self) -> Path:
        """Token counts of SFT conversions, by content hash and tokenizer (a cache: safe to delete)."""
        return self.root / ".trialbook" / "cache" / "token-counts.sqlite"

    def job(self, name: str, kind: str = "eval", jobs_dir: Path | None = None) -> JobPaths:
        return JobPaths((jobs_dir or self.jobs) / _check_component(name, "job"), kind=kind)

    def sft_job(self, name: str) -> Path:
        return self.sft_data / _check_component(name, "job")
