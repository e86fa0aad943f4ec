"""Where a job's tasks come from, per ``tasks:`` in config.yaml.

``tasks.path``: a dataset directory of Harbor-format tasks; ``tasks.instances``: a file of
SWE-style instances (see :mod:`trialbook.run.swe.instances`). Relative paths are resolved
against the block directory.
"""

from __future__ import annotations

from pathlib import Path

from trialbook.config import BlockConfig
from trialbook.errors import ConfigError
from trialbook.layout.paths import BlockPaths
from trialbook.run.swe.task import dataset_label, load_swe_tasks
from trialbook.run.tasks import Task, load_harbor_dataset


def resolve_block_path(block: BlockPaths, value: str) -> Path:
    """A config path: absolute as given, relative to the block directory otherwise."""
    p = Path(value).expanduser()
    return p if p.is_absolute() else (block.root / p)


def load_tasks(config: BlockConfig, block: BlockPaths, *, need_solution: bool = False) -> list[Task]:
    """Load and check every selected task; the first broken one raises a TaskError naming it."""
    t = config.tasks
    if t.path and t.instances:
        raise ConfigError("tasks: set either `path` or `instances`, not both", block.config)
    if t.instances:
        return list(load_swe_tasks(
            resolve_block_path(block, t.instances), include=t.include, exclude=t.exclude,
            repos_dir=block.repos, solution_root=block.swe_solutions,
            dataset_name=dataset_label(t.instances, t.dataset_name), need_solution=need_solution))
    if t.path:
        return list(
            load_harbor_dataset(resolve_block_path(block, t.path), t.include, t.exclude,
                                need_solution=need_solution)
        )
    raise ConfigError("tasks: set `path` (a directory of Harbor-format tasks) or `instances` "
                      "(a JSONL/JSON file of SWE-style instances)", block.config)
