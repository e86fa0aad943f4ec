"""Results trees for the dashboard tests: a hostile job (XSS payloads everywhere), a big trial,
and a job whose trials can be set running or finished (live view). Written as a foreign
harness would leave them on disk: trialbook's native layout, files only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

PAYLOADS = {
    "script": '<script>alert("xss-script")</script>',
    "img": '<img src=x onerror=alert("xss-img")>',
    "js": 'javascript:alert("xss-js")',
    "svg": '<svg onload=alert("xss-svg")><script>alert("xss-svg2")</script></svg>',
    "link": '<a href="javascript:alert(\'xss-a\')">click me</a>',
}
#: Directory names cannot hold "/", so the file-name payloads are those without one.
JOB_DIR = 'xss<img src=x onerror=alert("dir")>'
TRIAL_DIRS = ['t1<svg onload=alert("dir")>', "t2 javascript:alert(1)"]
HOSTILE_TASK = PAYLOADS["script"] + PAYLOADS["svg"]
HOSTILE_VARIANT = PAYLOADS["img"]


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else orjson.dumps(data, option=orjson.OPT_INDENT_2))


def job_config(job: Path) -> None:
    """The config snapshot every native job directory holds (what marks it as a job)."""
    job.mkdir(parents=True, exist_ok=True)
    (job / "config.yaml").write_text("kind: eval\n")


def trial_json(job: str, name: str, task: str, variant: str, attempt: int, outcome: str | None,
               **extra: Any) -> dict[str, Any]:
    """A trial.json body (finished unless ``outcome`` is None)."""
    base = {
        "schema": "trialbook.trial/1", "trial_name": name, "job": job, "task": task, "variant": variant,
        "agent": "scripted", "attempt": attempt, "status": "running" if outcome is None else "finished",
        "outcome": outcome, "reward": None if outcome is None else float(outcome == "resolved"),
        "started_at": "2026-01-01T10:00:00.000Z", "finished_at": None if outcome is None else "2026-01-01T10:00:05.000Z",
        "duration_s": None if outcome is None else 5.0,
        "timings": {"agent": {"started_at": "2026-01-01T10:00:00.500Z", "finished_at": "2026-01-01T10:00:03.000Z",
                              "duration_s": 2.5}},
    }
    base.update(extra)
    return base


def trajectory(steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {"schema_version": "ATIF-v1.6", "session_id": "s", "agent": {"name": "scripted", "version": "1"},
            "steps": [{"step_id": i + 1, **s} for i, s in enumerate(steps)]}


def hostile_steps() -> list[dict[str, Any]]:
    p = PAYLOADS
    return [
        {"source": "user", "message": p["script"] + " " + p["link"]},
        {"source": "agent", "message": f"[click]({p['js']}) {p['svg']}", "reasoning_content": p["img"],
         "tool_calls": [{"tool_call_id": "c1", "function_name": p["img"],
                         "arguments": {"cmd": p["svg"], "url": p["js"], "html": p["link"]}}],
         "observation": {"results": [{"source_call_id": "c1", "content": p["script"] + p["img"]}]},
         "metrics": {"prompt_tokens": 120, "completion_tokens": 30}},
    ]


def write_hostile_job(root: Path) -> Path:
    """A job whose names, trajectory, logs and files carry the XSS payloads."""
    job = root / JOB_DIR
    job_config(job)
    p = PAYLOADS
    for i, d in enumerate(TRIAL_DIRS, start=1):
        t = job / d
        extra: dict[str, Any] = {"reason": p["svg"], "model": p["js"]}
        if i == 2:
            extra["exception"] = {"type": "Boom" + p["img"], "message": p["script"], "traceback": p["svg"]}
        _write(t / "trial.json", trial_json(job.name, d, HOSTILE_TASK, HOSTILE_VARIANT, i,
                                            "unresolved" if i == 1 else "agent_error", **extra))
        _write(t / "agent" / "trajectory.json", trajectory(hostile_steps()))
        _write(t / "agent" / "litellm-trajectory.jsonl",
               orjson.dumps({"seq": 1, "status": "success", "model": p["img"],
                             "messages": [{"role": "user", "content": p["script"]}]}) + b"\n")
        (t / "evaluation").mkdir(parents=True, exist_ok=True)
        (t / "evaluation" / "test_output.txt").write_text(p["svg"] + "\n" + p["link"] + "\n")
        (t / "evaluation" / "patch.diff").write_text(f"--- a/x\n+++ b/x\n@@ -1 +1 @@\n-{p['img']}\n+{p['script']}\n")
    return job


def write_big_job(root: Path, n_steps: int = 450, big_chars: int = 3_000_000) -> Path:
    """One trial with many steps and one huge observation (the page must cut and page them)."""
    job = root / "big-job"
    job_config(job)
    t = job / "huge__1"
    steps = [{"source": "user", "message": "start"}]
    for i in range(n_steps - 1):
        content = ("A" * 999 + "\n") * (big_chars // 1000) + "THE-END" if i == 0 else f"output {i}"
        steps.append({"source": "agent", "message": f"step {i + 2}",
                      "tool_calls": [{"tool_call_id": f"c{i}", "function_name": "bash", "arguments": {"cmd": "ls"}}],
                      "observation": {"results": [{"source_call_id": f"c{i}", "content": content}]}})
    _write(t / "trial.json", trial_json(job.name, "huge__1", "huge", "v", 1, "resolved"))
    _write(t / "agent" / "trajectory.json", trajectory(steps))
    return job


def write_live_job(root: Path, finished: int, total: int = 4) -> Path:
    """A job of ``total`` trials of which the first ``finished`` are resolved and the rest running."""
    job = root / "live-job"
    job_config(job)
    for i in range(1, total + 1):
        name = f"task{i}"
        _write(job / name / "trial.json",
               trial_json(job.name, name, name, "v", 1, "resolved" if i <= finished else None))
    return job
