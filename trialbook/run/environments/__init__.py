"""Execution environments for trials: one interface (base.py), chosen by ``environment.type``
(registry.py): ``local`` runs each command in a bubblewrap sandbox, ``docker``/``podman`` in a
container built from the task's Dockerfile."""

from trialbook.run.environments.base import Environment, EnvironmentSpec, ExecResult
from trialbook.run.environments.local import Mount, Sandbox, bwrap_available

__all__ = ["Environment", "EnvironmentSpec", "ExecResult", "Mount", "Sandbox", "bwrap_available"]
