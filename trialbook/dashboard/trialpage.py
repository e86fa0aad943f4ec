"""The data of one trial page: outcome, rewards, timeline, the trajectory step by step, and files.

Built from a :class:`TrialView` of any layout (the reader gives the record, the ATIF
trajectory and the trial's logs), so a Harbor, Velora or native trial looks the same. Every
text goes through a :class:`TextStore` (long ones are cut, the rest loads on demand), and
every file is read through :func:`read_head` (inside the results tree, no links followed,
nothing that could block). Besides what the reader names (``output_files``, ``log_files``),
the trial directory is searched a few levels deep for the grading files SWE-style harnesses
share by name (``patch.diff``, ``report.json``, ``test_output.txt``, ...).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from trialbook.dashboard import charts
from trialbook.dashboard.texts import STEPS_INLINE, STEPS_PER_PAGE, TextStore, read_head
from trialbook.inspect.report import parse_time
from trialbook.sources.base import SourceReader, TrialView
from trialbook.sources.safe import SafeTree

#: Grading and log files looked for by name in a trial directory, with their label, in page order.
EVIDENCE: dict[str, str] = {
    "patch.diff": "Patch", "test_output.txt": "Test output", "test-stdout.txt": "Test output",
    "report.json": "Verifier report", "verdict.json": "Verdict", "reward.json": "Reward",
    "run_instance.log": "Evaluation log", "eval.sh": "Evaluation script",
}
OUTPUT_LABELS = {"verifier_output": "Test output", "agent_output": "Agent output"}
MAX_LLM_CALLS = 300
LLM_LOG_READ = 8_000_000


def _phases(record: Any) -> list[dict[str, Any]]:
    """Each timed phase with its offset from the trial's start (the earliest known time)."""
    starts = [parse_time(t.started_at) for t in record.timings.values()] + [parse_time(record.started_at)]
    known = [s for s in starts if s is not None]
    origin = min(known) if known else None
    out = []
    for name, t in record.timings.items():
        start = parse_time(t.started_at)
        out.append({
            "phase": name, "started_at": t.started_at, "finished_at": t.finished_at,
            "duration_s": t.duration_s,
            "offset_s": None if start is None or origin is None else round((start - origin).total_seconds(), 3),
        })
    return sorted(out, key=lambda p: (p["offset_s"] is None, p["offset_s"] or 0))


def _content_text(content: Any) -> str | None:
    """A step's message or an observation as text (content parts joined; media named)."""
    if content is None or isinstance(content, str):
        return content
    parts = []
    for part in content:
        if getattr(part, "type", None) == "text":
            parts.append(part.text or "")
        else:
            src = getattr(part, "source", None)
            parts.append(f"[{part.type}: {getattr(src, 'path', '?')}]")
    return "\n".join(parts)


def _step(step: Any, store: TextStore) -> dict[str, Any]:
    m = step.metrics
    calls = [{"id": c.tool_call_id, "name": store.text(c.function_name),
              "args": store.text(orjson.dumps(c.arguments, option=orjson.OPT_INDENT_2).decode())}
             for c in step.tool_calls or []]
    obs = [{"call": r.source_call_id, "content": store.text(_content_text(r.content))}
           for r in (step.observation.results if step.observation else [])]
    return {
        "id": step.step_id, "src": step.source, "ts": step.timestamp, "model": step.model_name,
        "msg": store.text(_content_text(step.message)), "reasoning": store.text(step.reasoning_content),
        "calls": calls, "obs": obs,
        "m": None if m is None else {"prompt": m.prompt_tokens, "completion": m.completion_tokens,
                                     "cached": m.cached_tokens, "cost": m.cost_usd},
    }


def _trajectory(view: TrialView, store: TextStore) -> dict[str, Any]:
    try:
        traj = view.trajectory()
    except Exception as exc:  # a damaged trajectory must not stop the page: say what is wrong
        return {"error": f"trajectory not readable: {exc}"[:2000], "steps": [], "total": 0}
    if traj is None:
        return {"error": None, "steps": [], "total": 0}
    steps = [_step(s, store) for s in traj.steps]
    pages = [store.page(steps[i:i + STEPS_PER_PAGE]) for i in range(STEPS_INLINE, len(steps), STEPS_PER_PAGE)]
    fm = traj.final_metrics
    return {
        "error": None, "total": len(steps), "steps": steps[:STEPS_INLINE], "pages": pages,
        "agent": {"name": traj.agent.name, "version": traj.agent.version, "model": traj.agent.model_name},
        "final": None if fm is None else fm.model_dump(mode="json", exclude_none=True, exclude={"extra"}),
        "notes": store.text(traj.notes), "n_subagents": len(traj.subagent_trajectories or []),
        "tokens_plot": charts.step_tokens(steps),
    }


def _file_entry(tree: SafeTree, label: str, path: Path, store: TextStore) -> dict[str, Any] | None:
    got = read_head(tree, path)
    if got is None:
        return None
    text, size = got
    kind = "diff" if path.suffix in (".diff", ".patch") else "text"
    if path.suffix == ".json" and size < 5_000_000:
        try:
            text = orjson.dumps(orjson.loads(text), option=orjson.OPT_INDENT_2).decode()
            kind = "json"
        except orjson.JSONDecodeError:
            pass
    return {"label": label, "name": path.name, "size": size, "kind": kind, "text": store.text(text),
            "partial": size > len(text.encode("utf-8", "replace"))}


def _find_named(top: Path, names: dict[str, str], depth: int) -> list[Path]:
    """Files under ``top`` (at most ``depth`` levels down) whose name is in ``names``; one
    directory walk with ``scandir`` that never enters a linked directory or a hidden one."""
    out: list[Path] = []
    try:
        with os.scandir(top) as it:
            entries = list(it)
    except OSError:
        return out
    for e in entries:
        if e.name in names:
            out.append(Path(e.path))
        elif depth > 0 and not e.name.startswith(".") and e.is_dir(follow_symlinks=False):
            out.extend(_find_named(Path(e.path), names, depth - 1))
    return out


def _evidence_paths(tree: SafeTree, view: TrialView, reader: SourceReader) -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    for key, path in reader.output_files(view).items():
        found.append((OUTPUT_LABELS.get(key, key), Path(path)))
    if view.path.is_dir():
        found.extend((EVIDENCE[p.name], p) for p in _find_named(view.path, EVIDENCE, 3) if tree.is_file(p))
    seen, out = set(), []
    order = {label: i for i, label in enumerate(dict.fromkeys(EVIDENCE.values()))}
    for label, path in sorted(found, key=lambda lp: (order.get(lp[0], 99), str(lp[1]))):
        if str(path) not in seen:
            seen.add(str(path))
            out.append((label, path))
    return out


def _llm_calls(tree: SafeTree, path: Path, store: TextStore) -> dict[str, Any] | None:
    got = read_head(tree, path, LLM_LOG_READ)
    if got is None:
        return None
    text, size = got
    cut = len(text.encode("utf-8", "replace")) < size
    lines = [line for line in text.split("\n") if line.strip()]
    if cut and lines:
        lines = lines[:-1]  # the last line read may be cut
    calls = []
    for line in lines[:MAX_LLM_CALLS]:
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError:
            rec = {"unparsed": line}
        if not isinstance(rec, dict):
            rec = {"value": rec}
        usage = rec.get("usage") if isinstance(rec.get("usage"), dict) else {}
        calls.append({
            "seq": rec.get("seq"), "status": rec.get("status"), "model": store.text(rec.get("model")),
            "prompt": usage.get("prompt_tokens"), "completion": usage.get("completion_tokens"),
            "raw": store.text(orjson.dumps(rec, option=orjson.OPT_INDENT_2).decode()),
        })
    return {"file": path.name, "size": size, "calls": calls, "partial": cut or len(lines) > MAX_LLM_CALLS}


def build_trial_page(view: TrialView, reader: SourceReader, job_dir: Path, job: dict[str, Any],
                     trial_id: str) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(page data, extra data files by key, files it was built from) of one trial."""
    store = TextStore(f"more/{job['id']}/{trial_id}")
    tree = SafeTree(job_dir, quiet=True)
    r = view.record
    exc = r.exception
    page: dict[str, Any] = {
        "id": trial_id, "job": job, "name": r.trial_name, "task": r.task, "variant": r.variant,
        "agent": r.agent, "model": r.model, "attempt": r.attempt, "status": r.status,
        "outcome": None if r.outcome is None else str(r.outcome), "reason": store.text(r.reason),
        "reward": r.reward, "rewards": r.rewards, "started_at": r.started_at, "finished_at": r.finished_at,
        "duration_s": r.duration_s, "n_turns": r.n_turns, "n_tool_calls": r.n_tool_calls,
        "usage": None if r.usage is None else r.usage.model_dump(mode="json", exclude_none=True),
        "exception": None if exc is None else {"type": exc.type, "message": store.text(exc.message),
                                               "phase": exc.phase, "traceback": store.text(exc.traceback)},
        "path": str(view.path), "layout": view.layout,
    }
    phases = _phases(r)
    page["timings"] = phases
    page["timeline_plot"] = charts.timeline(phases)
    page["trajectory"] = _trajectory(view, store)
    used = [str(p) for p in reader.trial_files(view.path)]
    files = []
    for label, path in _evidence_paths(tree, view, reader):
        entry = _file_entry(tree, label, path, store)
        if entry is not None:
            files.append(entry)
            used.append(str(path))
    page["files"] = files
    logs = reader.log_files(view)
    used += [str(p) for p in logs.values()]
    page["llm"] = _llm_calls(tree, logs["litellm"], store) if "litellm" in logs else None
    if view.path.is_dir():  # a new file in the trial's directories changes their mtime
        used += sorted({str(Path(p).parent) for p in used if str(p).startswith(str(view.path))} | {str(view.path)})
    return page, store.files, list(dict.fromkeys(used))
