"""SFT conversion of a trial that has only its LiteLLM log (no ATIF trajectory.json)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import requires_bwrap
from scripted_llm_server import SUBMIT, ScriptedLLMServer, tool_call
from test_llm_miniswe import WRITE_HELLO, api_key, run_job, variant  # noqa: F401 - api_key is a fixture

from trialbook.sft.job import convert_job


@requires_bwrap
def test_a_trial_without_atif_is_converted_from_its_litellm_log(tmp_path: Path, api_key: str) -> None:  # noqa: F811
    script = [tool_call("ls /app", content="Look first."), tool_call(WRITE_HELLO), tool_call(SUBMIT, content="Done.")]
    with ScriptedLLMServer(script) as srv:
        job = run_job(tmp_path, [variant(srv)])
    trial = job / "hello-world"
    from_atif = convert_job(job, layout="native", out=tmp_path / "a")[0]
    atif_record = json.loads((tmp_path / "a" / "im.jsonl").read_text().splitlines()[0])
    (trial / "agent" / "trajectory.json").unlink()  # what the spec calls the primary output remains
    result = convert_job(job, layout="native", out=tmp_path / "b")[0]
    assert result.kept == from_atif.kept == 1 and result.dropped.get("no_trajectory", 0) == 0
    record = json.loads((tmp_path / "b" / "im.jsonl").read_text().splitlines()[0])
    roles = [m["role"] for m in record["messages"]]
    full = [m["role"] for m in atif_record["messages"]]
    # the last command's output is in no later request, so only the agent's own log had it
    assert roles == full[:-1] and full[-1] == "tool"
    calls = [c["function"]["name"] for m in record["messages"] for c in m.get("tool_calls") or []]
    assert calls == ["bash", "bash", "bash"]
    assert any("Hello, world!" in (m.get("content") or "") for m in record["messages"] if m["role"] == "tool")
