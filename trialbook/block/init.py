"""``trialbook init``: create a block workspace (config.yaml, scripts/, .gitignore).

Existing files are never overwritten: init refuses a directory that already holds a
config.yaml.
"""

from __future__ import annotations

import os
import shutil
import stat
from importlib import resources
from pathlib import Path

from trialbook import secrets
from trialbook.errors import ConfigError
from trialbook.jsonio import atomic_write_text
from trialbook.layout.paths import BlockPaths
from trialbook.yamlio import read_yaml_or_none

SCRIPTS = {
    "eval": ["clean.sh", "analyze_job.sh"],
    "trajgen": ["clean.sh", "convert_trajectories.sh"],
}


def _template(name: str) -> str:
    return resources.files("trialbook.block").joinpath("templates", name).read_text(encoding="utf-8")


def render_config(kind: str, *, name: str, tasks_path: str) -> str:
    """The commented config.yaml of a new block."""
    text = _template(f"config.{kind}.yaml")
    return text.replace("{name}", name).replace("{tasks_path}", tasks_path)


def init_block(root: Path, kind: str, *, tasks_path: str = "tasks", name: str | None = None,
               config_text: str | None = None) -> BlockPaths:
    """Create a block at ``root``; returns its paths. ``config_text`` replaces the template."""
    if kind not in SCRIPTS:
        raise ConfigError(f"unknown block kind {kind!r}; use eval or trajgen")
    block = BlockPaths(root.resolve())
    if block.config.exists():
        raise ConfigError("a block already exists here (config.yaml present); refusing to overwrite",
                          block.config)
    root.mkdir(parents=True, exist_ok=True)
    text = config_text or render_config(kind, name=name or block.root.name, tasks_path=tasks_path)
    atomic_write_text(block.config, text)
    block.scripts.mkdir(exist_ok=True)
    for script in SCRIPTS[kind]:
        target = block.scripts / script
        if not target.exists():
            target.write_text(_template(script), encoding="utf-8")
            target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    gitignore = block.root / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text(_template("gitignore"), encoding="utf-8")
    for d in (block.jobs, block.archives):
        d.mkdir(parents=True, exist_ok=True)
    from trialbook.block.status import (
        update_status,  # (imported here: find_block is on every command's path)
    )
    from trialbook.model.trial import utc_now

    update_status(block.config, {"state": "never_run", "created_at": utc_now(), "kind": kind})
    return block


def seed_example_task(block: BlockPaths, tasks_path: str = "tasks") -> Path | None:
    """Put one example task in a new block's task directory, to copy from (see docs/tasks.md).

    Only when that directory does not exist yet: an existing dataset is never touched.
    Returns the example's directory, or None when nothing was added.
    """
    tasks_dir = Path(tasks_path)
    tasks_dir = tasks_dir if tasks_dir.is_absolute() else block.root / tasks_dir
    if tasks_dir.exists():
        return None
    target = tasks_dir / "hello-world"
    with resources.as_file(resources.files("trialbook.examples").joinpath("tasks", "hello-world")) as src:
        shutil.copytree(src, target)
    return target


def _register_secrets(config_path: Path) -> None:
    """Whatever a command in this block writes or prints is scrubbed of the config's secrets."""
    raw = read_yaml_or_none(config_path)  # a broken config is reported by the command itself
    if isinstance(raw, dict):
        secrets.register(secrets.config_secrets(raw))


def find_block(start: Path | None = None) -> BlockPaths:
    """The block containing ``start`` (default: the current directory), by looking for config.yaml."""
    here = (start or Path(os.getcwd())).resolve()
    for d in (here, *here.parents):
        if (d / "config.yaml").is_file() and (d / "artifacts").is_dir():
            _register_secrets(d / "config.yaml")
            return BlockPaths(d)
    raise ConfigError(f"not inside a trialbook block (no config.yaml with artifacts/ in {here} or above)",
                      not_found=True)
