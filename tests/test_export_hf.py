"""``trialbook export --format hf|trl``: SFT data as a ``datasets`` dataset, loaded back with
``datasets.load_from_disk``, and the TRL shape checked with TRL's own chat-format helpers
(``trl.data_utils``; TRL's trainers need torch, which the suite does not install)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from dashboard_trees import job_config, trajectory, trial_json
from datasets import load_from_disk
from hf_tiny import write_tokenizer
from typer.testing import CliRunner

from trialbook.cli.main import app
from trialbook.errors import TrialbookError
from trialbook.sft.messages import template_messages, training_messages

FIXTURES = Path(__file__).parent / "fixtures"


def cli(*args: str | Path) -> SimpleNamespace:
    """The command in this process (datasets is imported once for the module), exit codes as ``main``'s."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    if isinstance(result.exception, TrialbookError):
        return SimpleNamespace(returncode=int(result.exception.exit_code), stdout="", stderr=str(result.exception))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return SimpleNamespace(returncode=result.exit_code, stdout=result.stdout, stderr=result.stderr)


def write_tool_job(root: Path) -> Path:
    """A native job whose trials call two tools with different arguments, reason, and carry a
    copied-context turn (weight 0 in im.jsonl)."""
    job = root / "tools-job"
    job_config(job)
    steps = [
        {"source": "system", "message": "You are a coding agent."},
        {"source": "user", "message": "Fix calc.py"},
        {"source": "agent", "message": "Earlier I looked around.", "is_copied_context": True,
         "tool_calls": [{"tool_call_id": "old", "function_name": "bash", "arguments": {"command": "ls"}}],
         "observation": {"results": [{"source_call_id": "old", "content": "calc.py"}]}},
        {"source": "agent", "message": "", "reasoning_content": "Read the file first.",
         "tool_calls": [{"tool_call_id": "c1", "function_name": "bash", "arguments": {"command": "cat calc.py"}}],
         "observation": {"results": [{"source_call_id": "c1", "content": "return a - b"}]}},
        {"source": "agent", "message": "Patching.",
         "tool_calls": [{"tool_call_id": "c2", "function_name": "edit",
                         "arguments": {"path": "calc.py", "old": "a - b", "new": "a + b", "count": 1}}],
         "observation": {"results": [{"source_call_id": "c2", "content": "ok"}]}},
        {"source": "agent", "message": "Done: add() adds."},
    ]
    for i, outcome in enumerate(["resolved", "unresolved"], start=1):
        t = job / f"t{i}"
        (t / "agent").mkdir(parents=True)
        (t / "trial.json").write_bytes(orjson.dumps(trial_json("tools-job", f"t{i}", f"task-{i}", "v1", 1, outcome)))
        tweaked = [dict(s, message=f"{s['message']} ({i})") if s["source"] == "user" else s for s in steps]
        (t / "agent" / "trajectory.json").write_bytes(orjson.dumps(trajectory(tweaked)))
    return job


@pytest.fixture(scope="module")
def sft_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A conversion's output (im.jsonl, ...) of the tool job and of the Harbor fixture job."""
    base = tmp_path_factory.mktemp("sft")
    write_tool_job(base / "jobs")
    out = base / "sft"
    done = cli("convert", base / "jobs" / "tools-job", "--out", out, "--json")
    assert done.returncode == 0, done.stderr
    return out


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (path / "im.jsonl").read_text().splitlines()]


def without_none(value: Any) -> Any:
    """TRL's documented remedy for Arrow-padded rows (trl.trainer.utils.remove_none_values, which
    imports torch): drop None entries of mappings, recursively."""
    if isinstance(value, list):
        return [without_none(v) for v in value]
    if isinstance(value, dict):
        return {k: without_none(v) for k, v in value.items() if v is not None}
    return value


def test_hf_dataset_holds_the_im_jsonl_records_exactly(sft_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "hf"
    done = cli("export", "--format", "hf", sft_dir, "--out", out, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == 2
    dataset = load_from_disk(str(out))
    expected = records(sft_dir)
    assert len(dataset) == len(expected) == 2
    for row, record in zip(dataset, expected, strict=True):
        assert (row["id"], row["task"], row["attempt"], row["score"], row["resolved"]) == (
            record["id"], record["task"], record["attempt"], record["score"], record["resolved"])
        assert without_none(row["messages"]) == record["messages"]  # arguments stay JSON text, weight marks stay
        assert json.loads(row["tools"]) == record["tools"]
        assert row["source_layout"] == "native" and row["trial_path"] == record["meta"]["trial_path"]
    assert any(m["weight"] == 0 for m in dataset[0]["messages"])


def test_trl_dataset_is_trls_chat_format(sft_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer
    from trl.data_utils import apply_chat_template, is_conversational

    out = tmp_path / "trl"
    done = cli("export", "--format", "trl", sft_dir, "--out", out)
    assert done.returncode == 0, done.stderr
    dataset = load_from_disk(str(out))
    assert dataset.column_names[:2] == ["messages", "tools"]
    write_tokenizer(tmp_path / "tok")
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    for row, record in zip(dataset, records(sft_dir), strict=True):
        assert is_conversational(row)
        calls = [c for m in row["messages"] for c in m["tool_calls"] or ()]
        assert calls and all(isinstance(c["function"]["arguments"], dict) for c in calls)  # objects, not text
        assert {c["function"]["name"] for c in calls} == {"bash", "edit"}
        # the copied-context turn and its tool result are not there; reasoning is
        assert "Earlier I looked around." not in [m["content"] for m in row["messages"]]
        assert any(m["reasoning_content"] == "Read the file first." for m in row["messages"])
        # rendered by TRL with a real chat template, the row is the conversation im.jsonl holds
        messages, tools = without_none(row["messages"]), without_none(row["tools"])
        rendered = apply_chat_template({"messages": messages}, tokenizer, tools=tools)["text"]
        expected = tokenizer.apply_chat_template(template_messages(training_messages(record["messages"])),
                                                 tools=record["tools"], tokenize=False)
        assert rendered == expected
        assert '"arguments": {"path": "calc.py", "old": "a - b", "new": "a + b", "count": 1}' in rendered


def test_jobs_are_converted_first_and_clashing_argument_types_are_refused(tmp_path: Path) -> None:
    out = tmp_path / "trl"
    done = cli("export", "--format", "trl", FIXTURES / "harbor" / "jobs" / "mixed-agents", "--out", out, "--json")
    assert done.returncode == 0, done.stderr
    assert len(load_from_disk(str(out))) == json.loads(done.stdout)["rows"] > 0
    clash = tmp_path / "clash"
    clash.mkdir()
    lines = []
    for i, value in enumerate(["text", {"nested": True}]):
        call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": json.dumps({"x": value})}}
        lines.append(json.dumps({"id": f"j/t{i}", "job": "j", "task": "t", "variant": "v", "attempt": 1, "score": 1.0,
                                 "resolved": True, "tools": [], "meta": {},
                                 "messages": [{"role": "user", "content": "go"},
                                              {"role": "assistant", "content": "", "tool_calls": [call]}]}))
    (clash / "im.jsonl").write_text("\n".join(lines) + "\n")
    refused = cli("export", "--format", "trl", clash, "--out", tmp_path / "clash-trl")
    assert refused.returncode == 2 and "--format hf" in refused.stderr
    assert not (tmp_path / "clash-trl").exists()
    assert cli("export", "--format", "hf", clash, "--out", tmp_path / "clash-hf").returncode == 0
    arguments = [m["tool_calls"][0]["function"]["arguments"] for r in load_from_disk(str(tmp_path / "clash-hf"))
                 for m in r["messages"] if m["tool_calls"]]
    assert [json.loads(a) for a in arguments] == [{"x": "text"}, {"x": {"nested": True}}]


def test_existing_output_and_push_without_token_are_refused(sft_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "hf"
    assert cli("export", "--format", "hf", sft_dir, "--out", out).returncode == 0
    stamp = sorted((p.name, p.stat().st_mtime_ns) for p in out.iterdir())
    again = cli("export", "--format", "hf", sft_dir, "--out", out)
    assert again.returncode == 4 and "--force" in again.stderr
    assert sorted((p.name, p.stat().st_mtime_ns) for p in out.iterdir()) == stamp
    assert cli("export", "--format", "hf", sft_dir, "--out", out, "--force").returncode == 0
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    pushed = subprocess.run([sys.executable, "-m", "trialbook.cli.main", "export", "--format", "trl", str(sft_dir),
                             "--out", str(tmp_path / "p"), "--push-to-hub", "me/ds"],
                            capture_output=True, text=True, timeout=120, env=env)
    assert pushed.returncode == 2 and "HF_TOKEN" in pushed.stderr and not (tmp_path / "p").exists()
