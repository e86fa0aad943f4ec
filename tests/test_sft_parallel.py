"""SFT conversion across processes, token counts cached by content hash, and conversion without counts."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from trialbook.errors import ConfigError
from trialbook.sft import ConvertOptions, get_tokenizer
from trialbook.sft.job import convert_job

FIXTURES = Path(__file__).parent / "fixtures"
OUTPUTS = ("im.jsonl", "lf.json", "lf.stats.json", "dataset_info.json", "lf_train.yaml")  # the last names its dir
WORDS = ["the", "parser", "drops", "a", "trailing", "newline", "so", "we", "patch", "the", "tokenizer", "and", "rerun", "pytest", "until", "it", "passes"]


def _trajectory(rng: random.Random, task: str) -> dict:
    steps = [{"step_id": 1, "source": "system", "message": "You are a careful engineer."},
             {"step_id": 2, "source": "user", "message": f"Fix {task}: " + " ".join(rng.choices(WORDS, k=30))}]
    for i in range(rng.randint(1, 4)):
        call = f"call_{i}"
        steps.append({"step_id": len(steps) + 1, "source": "agent", "model_name": "m",
                      "message": " ".join(rng.choices(WORDS, k=8)), "reasoning_content": " ".join(rng.choices(WORDS, k=12)),
                      "tool_calls": [{"tool_call_id": call, "function_name": "bash",
                                      "arguments": {"command": "pytest -x " + rng.choice(WORDS)}}],
                      "observation": {"results": [{"source_call_id": call,
                                                   "content": " ".join(rng.choices(WORDS, k=rng.randint(5, 80)))}]}})
    steps.append({"step_id": len(steps) + 1, "source": "agent", "model_name": "m", "message": "Done."})
    return {"schema_version": "ATIF-v1.6", "session_id": task, "agent": {"name": "a", "version": "1", "model_name": "m"},
            "steps": steps}


def make_job(root: Path, n_tasks: int = 12) -> Path:
    """A native job of 3 attempts x 2 variants per task, with a duplicate, a trial without a
    trajectory and a cancelled one among them."""
    src = FIXTURES / "native" / "jobs" / "native-job"
    job = root / "jobs" / "sft-job"
    job.mkdir(parents=True)
    shutil.copy(src / "config.yaml", job / "config.yaml")
    shutil.copy(src / "results.json", job / "results.json")
    record = json.loads((src / "hello-world__nop__1" / "trial.json").read_text())
    rng = random.Random(3)
    for t in range(n_tasks):
        for variant in ("alpha", "beta"):
            for attempt in (1, 2, 3):
                name = f"task-{t:02d}__{variant}__{attempt}"
                trial = job / name
                (trial / "agent").mkdir(parents=True)
                reward = rng.choice([0.0, 0.5, 1.0])
                outcome = "resolved" if reward == 1.0 else "unresolved"
                if name == "task-03__beta__2":
                    outcome, reward = "cancelled", None
                (trial / "trial.json").write_text(json.dumps({
                    **record, "trial_name": name, "task": f"task-{t:02d}", "variant": variant, "attempt": attempt,
                    "outcome": outcome, "reward": reward, "rewards": None if reward is None else {"reward": reward},
                    "job": "sft-job"}))
                if name != "task-05__alpha__3":  # no trajectory
                    traj = _trajectory(random.Random(f"{t}/{variant}/{attempt % 2}"), f"task-{t:02d}")
                    (trial / "agent" / "trajectory.json").write_bytes(orjson.dumps(traj))
    return job


def _bytes(out: Path) -> dict[str, bytes]:
    """The output files' bytes, with the output directory lf_train.yaml names taken out."""
    return {name: (out / name).read_bytes().replace(str(out).encode(), b"OUT") for name in OUTPUTS}


#: The parallel conversion runs in a fresh process: this one may have threads (other tests'),
#: and conversion then (rightly) stays in one process. It checks that it really splits.
_PARALLEL = """
import sys, threading
from pathlib import Path
from trialbook.sft import ConvertOptions
from trialbook.sft.job import JobInputs, convert_job
from trialbook.sft.parallel import parallel_parts
from trialbook.sources import open_source
job, out = Path(sys.argv[1]), Path(sys.argv[2])
assert threading.active_count() == 1
assert len(parallel_parts(JobInputs(open_source(job)[0]), 3)) > 1
convert_job(job, out=out, options=ConvertOptions(per_task_cap=2, max_tokens=400, tokenizer="o200k_base"), workers=3)
"""


def test_workers_write_the_same_bytes_as_one_process(tmp_path: Path) -> None:
    job = make_job(tmp_path)
    options = ConvertOptions(per_task_cap=2, max_tokens=400, tokenizer="o200k_base")
    [one] = convert_job(job, out=tmp_path / "one", options=options, workers=1)
    subprocess.run([sys.executable, "-c", _PARALLEL, str(job), str(tmp_path / "three")], check=True)
    assert _bytes(tmp_path / "one") == _bytes(tmp_path / "three")
    stats = one.stats
    assert stats["trajectories"]["in"] == 71 and 0 < one.kept < 71  # the cancelled trial is no input
    dropped = stats["trajectories"]["dropped"]
    assert dropped["no_trajectory"] == 1 and dropped["duplicate"] > 0 and dropped["per_task_cap"] > 0
    assert dropped["max_tokens"] > 0
    assert not [p for p in (tmp_path / "three").iterdir() if p.name.startswith(".")]  # spools removed


def test_token_counts_are_cached_by_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    job = make_job(tmp_path, n_tasks=3)
    cache = tmp_path / "cache" / "tokens.sqlite"
    engine = get_tokenizer("o200k_base").engine
    counted: list[int] = []
    real = engine.count

    def spy(texts: list[str], threads: int = 1) -> list[int]:
        counted.append(len(texts))
        return real(texts, threads)

    monkeypatch.setattr(engine, "count", spy)
    get_tokenizer("o200k_base")._cache.clear()  # the in-process prompt cache must not hide the file's work
    [first] = convert_job(job, out=tmp_path / "a", workers=1, token_cache=cache)
    assert sum(counted) > 0 and cache.is_file()
    counted.clear()
    get_tokenizer("o200k_base")._cache.clear()
    [again] = convert_job(job, out=tmp_path / "b", workers=2, token_cache=cache)
    assert sum(counted) == 0  # every text's count came from the cache
    assert _bytes(tmp_path / "a") == _bytes(tmp_path / "b") and first.stats["tokens"]["total"] > 0
    [uncached] = convert_job(job, out=tmp_path / "c", workers=1)
    assert _bytes(tmp_path / "c") == _bytes(tmp_path / "a")


def test_conversion_without_token_counts(tmp_path: Path) -> None:
    job = make_job(tmp_path, n_tasks=2)
    [result] = convert_job(job, out=tmp_path / "o", options=ConvertOptions(tokenizer="none"), workers=1)
    tokens = result.stats["tokens"]
    assert tokens["tokenizer"] == "none" and tokens["count"] == 0 and tokens["total"] == 0
    assert result.kept > 0 and (tmp_path / "o" / "lf.json").read_bytes().startswith(b"[\n{")
    with pytest.raises(ConfigError, match="max_tokens needs a tokenizer"):
        ConvertOptions(tokenizer="none", max_tokens=100)


def test_a_duplicate_example_is_counted_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Token counts are needed for the kept examples only: of two identical examples one is dropped,
    so the second is not counted again (its count is the first's)."""
    from trialbook.model.trajectory import parse_trajectory
    from trialbook.sft import SftInput, convert

    counter = get_tokenizer("o200k_base")
    counted: list[int] = []
    real = counter.engine.count
    monkeypatch.setattr(counter.engine, "count", lambda texts, threads=1: counted.append(len(texts)) or real(texts))
    traj = parse_trajectory(_trajectory(random.Random(5), "t"))

    def item(i: int) -> SftInput:
        return SftInput(id=f"j/t__v__{i}", job="j", task="t", variant="v", attempt=i, score=1.0, resolved=True,
                        layout="native", trial_path=f"t__v__{i}", trajectory=traj)

    options = ConvertOptions(batch_size=1)  # one example per batch: no batch-level sharing of texts
    counter._cache.clear()
    one = convert([item(1)], tmp_path / "one", options)
    once = sum(counted)
    counted.clear()
    counter._cache.clear()
    two = convert([item(1), item(2)], tmp_path / "two", options)
    assert once > 0 and sum(counted) == once
    assert two.stats["trajectories"]["dropped"]["duplicate"] == 1
    assert two.stats["tokens"]["total"] == one.stats["tokens"]["total"]
