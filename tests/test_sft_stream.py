"""A native job's trials streamed to SFT conversion: listed by name, each record read when its
position is converted (memory flat in the number of trials), same output as a whole job read."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_sft_parallel import OUTPUTS, make_job

from trialbook.sft import ConvertOptions
from trialbook.sft.inputs import SftInput
from trialbook.sft.job import JobInputs, convert_job
from trialbook.sources.native import NativeReader


def _bytes(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes().replace(str(out).encode(), b"OUT") for name in OUTPUTS}


def test_stream_lists_the_trials_of_a_read_and_reads_each_when_asked(tmp_path: Path) -> None:
    job = make_job(tmp_path, n_tasks=6)
    outside = tmp_path / "elsewhere" / "task-99__alpha__1"
    (outside / "agent").mkdir(parents=True)
    (outside / "trial.json").write_text((job / "task-00__alpha__1" / "trial.json").read_text())
    os.symlink(outside, job / "task-99__alpha__1")  # a link leaving the job: listed by neither
    reader = NativeReader()
    [whole] = reader.read(job)
    [stream] = reader.stream(job)
    assert (stream.job.name, stream.job.path, stream.job.status, stream.job.started_at, stream.job.meta) == \
        (whole.name, whole.path, whole.status, whole.started_at, whole.meta)
    assert stream.job.trials == [] and stream.job.trialbook_job
    # read after listing: a record changed since the listing is seen as it is now
    changed = job / "task-01__beta__2" / "trial.json"
    changed.write_text(json.dumps({**json.loads(changed.read_text()), "reward": 0.25}))
    streamed = [stream.trial(i) for i in range(len(stream))]
    assert streamed.count(None) == 1 and len(stream) == len(whole.trials) + 1
    views = sorted((v for v in streamed if v is not None), key=lambda v: v.sort_key)
    assert [(v.path, v.record.trial_name) for v in views] == [(t.path, t.record.trial_name) for t in whole.trials]
    assert next(v for v in views if v.path.name == "task-01__beta__2").record.reward == 0.25
    inputs = JobInputs(stream)
    items = [inputs.get(i) for i in range(len(inputs))]
    assert sum(isinstance(item, SftInput) for item in items) == len(whole.trials) - 2  # cancelled, no trajectory
    [one] = reader.stream(job / "task-02__alpha__3")  # a trial path: its job, that trial only
    assert one.job.name == job.name and one.names == ["task-02__alpha__3"]
    assert one.trial(0).record.trial_name == "task-02__alpha__3"


def test_streamed_conversion_writes_the_bytes_of_a_whole_job_read(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    job = make_job(tmp_path, n_tasks=4)
    options = ConvertOptions(per_task_cap=2, tokenizer="o200k_base", max_tokens=400)
    [streamed] = convert_job(job, out=tmp_path / "streamed", options=options, workers=1)
    monkeypatch.setattr(NativeReader, "stream", lambda self, path: None)  # the layout reads whole jobs only
    [whole] = convert_job(job, out=tmp_path / "whole", options=options, workers=1)
    assert _bytes(tmp_path / "streamed") == _bytes(tmp_path / "whole")
    assert streamed.kept == whole.kept > 0 and streamed.stats["trajectories"]["dropped"]["per_task_cap"] > 0
