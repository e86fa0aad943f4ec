"""Where each unit lives in a store (the only place that knows the store's layout)::

    <prefix>/
      <job>/                          a job's own files: config.yaml, results.json, summary.*, analysis/
        .trialbook-manifest.json      manifest of those files (written last)
        <trial>/                      one finished trial, as in the block's job directory
          .trialbook-manifest.json    manifest of the trial (written last: the trial is complete)
      .sft_data/<job>/                SFT data of the job (im.jsonl, lf.json, ...) + manifest
      .archives/run_NNN/              archived runs of the block + manifest
      .archives/index/index.yaml      the block's archive index + manifest

Job and trial names never start with '.', so the dot-directories cannot collide with a job.
One prefix holds one block's outputs.
"""

from __future__ import annotations

from trialbook.layout.store_url import StoreURL

SFT_DIR = ".sft_data"
ARCHIVES_DIR = ".archives"


def job_prefix(url: StoreURL, job: str) -> str:
    return url.key(job)


def trial_prefix(url: StoreURL, job: str, trial: str) -> str:
    return url.key(job, trial)


def sft_prefix(url: StoreURL, job: str) -> str:
    return url.key(SFT_DIR, job)


def archive_prefix(url: StoreURL, run_dir: str) -> str:
    return url.key(ARCHIVES_DIR, run_dir)


def archive_index_prefix(url: StoreURL) -> str:
    return url.key(ARCHIVES_DIR, "index")
