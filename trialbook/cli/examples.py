"""The Examples section at the end of every command's ``--help``, kept in one place."""

from __future__ import annotations

#: Command name -> example command lines (each shown as written, one per line).
EXAMPLES: dict[str, list[str]] = {
    "init": ["trialbook init my-eval --kind eval", "trialbook init gen --kind trajgen --tasks ../tasks"],
    "check": ["trialbook check", "trialbook check tasks/ --run", "trialbook check tasks/fix-the-bug --json"],
    "demo": ["trialbook demo demo-runs/first", "trialbook demo demo-runs/swe --swe"],
    "run": ["trialbook run", "trialbook run -b my-eval --json",
            "trialbook run -k 5 -n 8 --task 'fix-*' --variant gpt",
            "trialbook run --models gemini,claude --runs 8 --instances 1769880766122899",
            "trialbook run --job 2026-12-05__09-17-38   # resume that job"],
    "status": ["trialbook status", "trialbook status -b my-eval --json"],
    "monitor": ["trialbook monitor", "trialbook monitor -f --interval 2"],
    "show": ["trialbook show --last", "trialbook show path/to/harbor/jobs/2026-12-01__10-00-00",
             "trialbook show --last --json > summary.json", "trialbook show s3://bucket/prefix/JOB"],
    "list": ["trialbook list", "trialbook list --layout harbor --json"],
    "reindex": ["trialbook reindex", "trialbook reindex ~/harbor/jobs ~/Trajectory_results",
                "trialbook reindex --full", "trialbook reindex s3://bucket/prefix"],
    "dashboard": ["trialbook dashboard", "trialbook dashboard --serve --port 8765",
                  "trialbook dashboard ~/harbor/jobs --out /tmp/site --json",
                  "trialbook dashboard s3://bucket/prefix"],
    "push": ["trialbook push", "trialbook push my-job --json"],
    "sql": ["trialbook sql --tables",
            "trialbook sql \"SELECT job_name, layout, n_trials FROM all_jobs\"",
            "trialbook sql \"SELECT outcome, count(*) FROM all_trials GROUP BY outcome\" --json",
            "trialbook sql \"PRAGMA table_info(all_trials)\""],
    "analyze": ["trialbook analyze --last --trial 1", "trialbook analyze path/to/job -t 3 --json",
                "trialbook analyze --file events.jsonl"],
    "analyze-job": ["trialbook analyze-job", "trialbook analyze-job path/to/job --gold gold.jsonl"],
    "convert": ["trialbook convert", "trialbook convert my-job --resolved-only --max-tokens 32768",
                "trialbook convert path/to/harbor/job --out sft/ --json"],
    "archive": ["trialbook archive", "trialbook archive my-job", "trialbook archive show 3",
                "trialbook archive restore 3 ../rerun"],
    "archives": ["trialbook archives", "trialbook archives --repair --json"],
    "clean": ["trialbook clean --dry-run", "trialbook clean --repos"],
    "migrate": ["trialbook migrate old_outputs/ Trajectory_results/ --dry-run"],
    "export": ["trialbook export --format parquet --out tables/", "trialbook export --format trl artifacts/sft_data/my-job",
               "trialbook export my-job --to velora-out --dry-run", "trialbook export my-job --to velora-out --name-by model"],
    "validate": ["trialbook validate artifacts/jobs/JOB/TRIAL/agent/trajectory.json"],
    "schema": ["trialbook schema", "trialbook schema atif > atif.schema.json"],
}


def epilog(command: str) -> str | None:
    """The Examples section for ``command`` (None when it has none)."""
    lines = EXAMPLES.get(command)
    if not lines:
        return None
    return "Examples:\n\n" + "\n".join(f"  {line}" for line in lines)
