"""A native job's trials streamed to SFT conversion: listed by name, each record read when its
position is converted, same output as a whole job read; the candidates kept column-wise.
Together they keep memory flat in the number of trials (figures: benchmarks/sft_bench.py)."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import pytest
from test_sft_parallel import OUTPUTS, make_job

from trialbook.sft import ConvertOptions
from trialbook.sft.candidates import Candidates
from trialbook.sft.inputs import SftInput
from trialbook.sft.job import JobInputs, convert_job
from trialbook.sft.sharegpt import ShareGptNotes
from trialbook.sft.stats import ExampleFacts
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


def test_candidates_table_keeps_each_fact_and_the_output_order() -> None:
    """The column-wise table gives back what went in (an int score stays an int), across parts,
    and orders by (task, variant, attempt, id) as strings do, non-ASCII ids included."""
    rng = random.Random(5)
    parts, expected = [Candidates(), Candidates()], []
    for n in range(300):
        task, variant = rng.choice(["t-b", "t-a", "tâche", "t-é"]), rng.choice(["v2", "v1", "ß"])
        tools = tuple(rng.choice(["bash", "édit", "view"]) for _ in range(rng.randint(0, 3)))
        score = rng.choice([None, 1, 0.5, 0.0])
        facts = ExampleFacts(task=task, variant=variant, score=score, resolved=score == 1, tokens=rng.randint(0, 9999),
                             messages=rng.randint(1, 50), assistant_turns=rng.randint(0, 20), tool_names=tools,
                             parallel_turns=rng.randint(0, 3))
        notes = ShareGptNotes(*(rng.randint(0, 4) for _ in range(5)))
        ident = f"job/{rng.choice(['x', 'ÿ', 'Ā', '😀'])}{n}"
        parts[n % 2].add(facts, attempt=rng.randint(1, 3), id=ident, digest=bytes([n % 256]) * 16, notes=notes,
                         spool=n % 2, offset=n * 10, im_len=n, lf_len=n + 1)
        expected.append((facts, (task, variant, 0, ident), notes))
    table = Candidates()
    table.extend(parts[0])
    table.extend(parts[1])
    arrival = [n for p in (0, 1) for n in range(300) if n % 2 == p]
    for i, n in enumerate(arrival):
        facts, _, _ = expected[n]
        assert table.facts(i) == facts and type(table.facts(i).score) is type(facts.score)
        assert table.offset[i] == n * 10 and table.digest(i) == bytes([n % 256]) * 16
    keys = [(*expected[n][1][:2], table.attempt[i], expected[n][1][3]) for i, n in enumerate(arrival)]
    assert [keys[i] for i in table.output_order()] == sorted(keys)
    summed = table.sum_notes(range(0, len(table), 3))
    assert summed.as_dict() == {name: sum(getattr(expected[arrival[i]][2], name) for i in range(0, len(table), 3))
                                for name in ShareGptNotes.__slots__}


HARBOR_FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("streamed_from", [0, 5000])
@pytest.mark.parametrize("jobs", ["harbor", "pier_copilot"])
def test_a_harbor_job_streams_the_trials_and_numbers_of_a_whole_read(tmp_path: Path, jobs: str, streamed_from: int,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Harbor variants and attempts depend on every trial: a stream numbers each trial from its
    siblings' identities as the whole read does, reads it only when asked, and converts to the
    same bytes (the Harbor and Pier layouts, a job root and a single trial; streamed from the
    first trial, and small jobs read whole as by default)."""
    from trialbook.sources import harbor
    from trialbook.sources.harbor import HarborReader

    monkeypatch.setattr(harbor, "STREAM_MIN_TRIALS", streamed_from)

    root = tmp_path / "jobs"
    shutil.copytree(HARBOR_FIXTURES / jobs / "jobs", root, symlinks=True)
    reader = HarborReader()
    for whole, stream in zip(reader.read(root), reader.stream(root), strict=True):
        assert (stream.job.name, stream.job.status, stream.job.meta) == (whole.name, whole.status, whole.meta)
        views = sorted((stream.trial(i) for i in range(len(stream))), key=lambda v: v.path)
        trials = sorted(whole.trials, key=lambda t: t.path)
        assert len(views) == len(trials) > 2
        assert [v.record for v in views] == [t.record for t in trials]
        assert [v.extra["identity"] for v in views] == [t.extra["identity"] for t in trials]
    job = next(p for p in sorted(root.iterdir()) if p.is_dir())
    trial = next(p for p in sorted(job.iterdir()) if p.is_dir())
    [one] = reader.stream(trial)
    assert one.names == [trial.name] and one.trial(0).record == reader.read(trial)[0].trials[0].record
    options = ConvertOptions(per_task_cap=2, tokenizer="o200k_base")
    streamed = convert_job(job, out=tmp_path / "streamed", options=options, workers=1)
    monkeypatch.setattr(HarborReader, "stream", lambda self, path: None)
    whole_read = convert_job(job, out=tmp_path / "whole", options=options, workers=1)
    assert _bytes(tmp_path / "streamed") == _bytes(tmp_path / "whole")
    assert [r.kept for r in streamed] == [r.kept for r in whole_read]
