"""Execution environments for trials: one interface (base.py), chosen by ``environment.type``
(registry.py): ``local`` runs each command in a bubblewrap sandbox (local_env.py, local.py),
``docker``/``podman`` in a container built from the task's Dockerfile (container.py)."""

from __future__ import annotations

import importlib
from typing import Any

from trialbook.run.environments.base import Environment, EnvironmentSpec, ExecResult
from trialbook.run.environments.local import Mount, Sandbox, bwrap_available

__all__ = ["Environment", "EnvironmentSpec", "ExecResult", "LocalEnvironment", "Mount", "Sandbox",
           "bwrap_available"]


def __getattr__(name: str) -> Any:
    """``LocalEnvironment`` on first use (its module needs run/scratch.py, which imports this package)."""
    if name == "LocalEnvironment":
        return importlib.import_module("trialbook.run.environments.local_env").LocalEnvironment
    raise AttributeError(name)
