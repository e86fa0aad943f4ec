"""The bundled SWE-style example: a tiny git repository built on demand, its instances, a demo block.

A nested ``.git`` cannot ship inside the package, so the repository's commits are shipped
as directory trees (``examples/swe/commits/<n>/``, each laid over the previous one; a file
named ``gitignore`` becomes ``.gitignore``) and committed with a fixed author, committer,
date and an empty git config, so the commit ids are the same everywhere and
``instances.jsonl`` can name them.
"""

from __future__ import annotations

import os
import shutil
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from trialbook.block.init import init_block
from trialbook.errors import ConfigError
from trialbook.run.swe.repos import base_git_env, git

#: The example's commit ids, oldest first (checked by :func:`build_example_repo`).
EXAMPLE_COMMITS = (
    "a2c006b3861151a836da70da5aa9dd01b282b356",
    "faf451230cd47e4c2a872c25278668a252caf96f",
)
#: Directory name of the example repository next to ``instances.jsonl``.
EXAMPLE_REPO_DIR = "calc-repo"
_MESSAGES = ("calc: add, mul and clamp", "calc: mean and median")


def example_dir() -> Traversable:
    """The packaged ``examples/swe`` directory."""
    return resources.files("trialbook.examples").joinpath("swe")


def _commit_env(n: int) -> dict[str, str]:
    """A git environment making commit ``n`` byte-identical on every machine."""
    date = f"2024-01-0{n + 1}T12:00:00+0000"
    return {
        **base_git_env(),
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "trialbook", "GIT_AUTHOR_EMAIL": "examples@trialbook.invalid",
        "GIT_COMMITTER_NAME": "trialbook", "GIT_COMMITTER_EMAIL": "examples@trialbook.invalid",
        "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date, "LC_ALL": "C",
    }


def _lay_over(src: Traversable, dest: Path) -> None:
    """Copy the tree ``src`` over ``dest`` (``gitignore`` -> ``.gitignore``), files mode 0644."""
    for entry in src.iterdir():
        if entry.name == "__pycache__":
            continue
        target = dest / (".gitignore" if entry.name == "gitignore" else entry.name)
        if entry.is_dir():
            target.mkdir(exist_ok=True)
            _lay_over(entry, target)
        else:
            target.write_bytes(entry.read_bytes())
            target.chmod(0o644)


def build_example_repo(dest: Path) -> list[str]:
    """Create the example git repository at ``dest`` (must not exist) and return its commit ids."""
    if dest.exists():
        raise ConfigError("the example repository's directory already exists", dest)
    dest.mkdir(parents=True)
    commits = example_dir().joinpath("commits")
    shas = []
    for n, message in enumerate(_MESSAGES):
        env = _commit_env(n)
        if n == 0:
            git(["init", "--quiet", "--initial-branch=main", str(dest)], env=env, what="git init")
        _lay_over(commits.joinpath(str(n + 1)), dest)
        git(["add", "-A"], cwd=dest, env=env, what="git add")
        git(["commit", "--quiet", "--no-verify", "-m", message], cwd=dest, env=env, what="git commit")
        shas.append(git(["rev-parse", "HEAD"], cwd=dest, env=env, what="git rev-parse").strip())
    if tuple(shas) != EXAMPLE_COMMITS:
        raise ConfigError(f"the example repository was built with unexpected commit ids {shas} "
                          f"(expected {list(EXAMPLE_COMMITS)}); instances.jsonl would not match it", dest)
    return shas


def create_swe_demo_block(directory: Path) -> Path:
    """A new eval block at ``directory`` running the SWE example (oracle and nop) with its repository built."""
    if (directory / "config.yaml").exists():
        raise ConfigError("a block already exists here; choose an empty directory for the demo",
                          directory / "config.yaml")
    src = example_dir()
    block = init_block(directory, "eval", config_text=src.joinpath("config.yaml").read_text())
    with resources.as_file(src.joinpath("instances.jsonl")) as instances:
        shutil.copyfile(instances, block.root / "instances.jsonl")
    build_example_repo(block.root / EXAMPLE_REPO_DIR)
    return block.root
