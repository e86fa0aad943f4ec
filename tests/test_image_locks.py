"""The image build lock (run/environments/images.py) across jobs of one process: each job runs in
its own event loop, and a lock that one loop used must not break the next job's builds."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from trialbook.run.environments.images import build_lock


async def _contend(tag: str, log: list[str]) -> None:
    async def holder(name: str) -> None:
        async with build_lock(tag):
            log.append(f"{name} in")
            await asyncio.sleep(0.05)
            log.append(f"{name} out")

    await asyncio.gather(holder("a"), holder("b"))


def test_two_jobs_in_one_process_each_serialise_their_builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    for _ in range(2):  # the second loop waits on the lock of the same tag: it must be its own
        log: list[str] = []
        asyncio.run(_contend("localhost/trialbook/t:0123456789abcdef", log))
        assert log == ["a in", "a out", "b in", "b out"]
