"""Which class runs a trial's environment: ``environment.type`` or ``environment.import_path``.

The built-in environments are named by import path and imported on first use, so a job on
``local`` never imports the container code.
"""

from __future__ import annotations

from trialbook.config import EnvironmentConfig
from trialbook.errors import ConfigError
from trialbook.plugins import entry_point_classes, load_class
from trialbook.run.environments.base import Environment

#: Built-in environments by ``environment.type`` (module:Class, imported on first use).
BUILTIN: dict[str, str] = {
    "local": "trialbook.run.environments.local_env:LocalEnvironment",
    "docker": "trialbook.run.environments.container:DockerEnvironment",
    "podman": "trialbook.run.environments.container:PodmanEnvironment",
}
ENVIRONMENTS: dict[str, type[Environment]] = {}


def register_environment(cls: type[Environment]) -> type[Environment]:
    """Class decorator adding an environment under ``cls.type``."""
    ENVIRONMENTS[cls.type] = cls
    return cls


def environment_class(config: EnvironmentConfig) -> type[Environment]:
    """The class ``config`` names: ``import_path`` when given, else ``type`` (a built-in, a
    registered one, or one installed under the entry-point group ``trialbook.environments``)."""
    if config.import_path:
        return load_class(config.import_path, Environment, "environment.import_path")
    name = config.type
    if name not in ENVIRONMENTS and name in BUILTIN:
        ENVIRONMENTS[name] = load_class(BUILTIN[name], Environment, "environment")
    if name not in ENVIRONMENTS:
        found = entry_point_classes("trialbook.environments", Environment)
        ENVIRONMENTS.update({k: v for k, v in found.items() if k not in ENVIRONMENTS})
    if name not in ENVIRONMENTS:
        known = sorted({*BUILTIN, *ENVIRONMENTS})
        raise ConfigError(f"unknown environment.type {name!r}; known: {', '.join(known)} "
                          "(or environment.import_path: 'package.module:Class')")
    return ENVIRONMENTS[name]
