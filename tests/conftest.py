"""Shared fixtures: temporary blocks built from the bundled example tasks, and task makers."""

from __future__ import annotations

import hashlib
import os
import shutil
import textwrap
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from trialbook.block.init import init_block

# The suite runs offline: LiteLLM imported by a test before trialbook's own setting
# (trialbook.run.upstream) must not spend seconds trying to download its price map.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

requires_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None,
                                    reason="bubblewrap (bwrap) is not installed")

EXAMPLE_TASKS = Path(str(resources.files("trialbook.examples").joinpath("tasks")))


def write_task(root: Path, name: str, *, test_sh: str, solve_sh: str = "", instruction: str = "Do it.",
               toml: str = 'version = "1.0"\n', env_files: dict[str, str] | None = None) -> Path:
    """Create a Harbor-format task directory under ``root``."""
    d = root / name
    (d / "environment").mkdir(parents=True)
    (d / "tests").mkdir()
    (d / "solution").mkdir()
    (d / "task.toml").write_text(toml)
    (d / "instruction.md").write_text(instruction)
    (d / "environment" / "Dockerfile").write_text("FROM debian:bookworm-slim\n")
    for rel, content in (env_files or {}).items():
        (d / "environment" / rel).write_text(content)
    (d / "tests" / "test.sh").write_text(textwrap.dedent(test_sh))
    (d / "solution" / "solve.sh").write_text(textwrap.dedent(solve_sh or "#!/usr/bin/env bash\ntrue\n"))
    return d


def make_block(tmp_path: Path, *, tasks: list[str] | None = None, extra_tasks_dir: Path | None = None,
               **overrides: Any) -> Path:
    """A block in ``tmp_path/block`` whose tasks are copies of bundled examples (and/or others)."""
    root = tmp_path / "block"
    tasks_dir = root / "tasks"
    tasks_dir.mkdir(parents=True)
    for name in tasks or []:
        shutil.copytree(EXAMPLE_TASKS / name, tasks_dir / name)
    if extra_tasks_dir is not None:
        for d in extra_tasks_dir.iterdir():
            shutil.copytree(d, tasks_dir / d.name)
    config: dict[str, Any] = {
        "kind": "eval",
        "tasks": {"path": "tasks"},
        "variants": [{"name": "oracle", "agent": "oracle"}],
        "attempts": 1,
        "concurrency": 2,
        "timeouts": {"environment_setup": 30, "agent": 30, "verifier": 30},
    }
    config.update(overrides)
    init_block(root, config["kind"], config_text=yaml.safe_dump(config, sort_keys=False))
    return root


def tree_hash(path: Path) -> str:
    """A digest of every name and regular file's bytes under ``path`` (links are not followed)."""
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        h.update(str(p.relative_to(path)).encode())
        if p.is_file() and not p.is_symlink():
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture
def block_factory(tmp_path: Path):
    """Call with the same keywords as :func:`make_block`."""

    def factory(**kw: Any) -> Path:
        return make_block(tmp_path, **kw)

    return factory


@pytest.fixture(autouse=True)
def _forget_registered_secrets():
    """A job run in-process registers its config's secrets process-wide; tests start clean."""
    yield
    from trialbook import secrets

    secrets.reset()
