"""Loading user code: ``package.module:Name`` import paths named in a config, and entry
points of installed packages (the groups ``trialbook.agents``, ``trialbook.readers``, ...).

Agents, environments, readers and post-run steps are found the same way; a name that cannot
be loaded is one config error naming it and why.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any, TypeVar

from trialbook.errors import ConfigError

T = TypeVar("T")


def is_import_path(name: str) -> bool:
    """Whether ``name`` is ``package.module:Name`` rather than a registered name."""
    return ":" in name


def load_object(path: str, what: str) -> Any:
    """The object ``package.module:Name`` (``Name`` may be dotted); ``what`` names it in errors."""
    module, _, attr = path.partition(":")
    if not module or not attr:
        raise ConfigError(f"{what} {path!r}: expected an import path 'package.module:Name'")
    try:
        obj: Any = importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - any failure of user code is reported the same way
        raise ConfigError(f"{what} {path!r}: cannot import {module}: {type(exc).__name__}: {exc}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"{what} {path!r}: {module} has no {attr!r}") from None
    return obj


def load_class(path: str, base: type[T], what: str) -> type[T]:
    """The class at ``path``, which must subclass ``base``."""
    obj = load_object(path, what)
    if not (isinstance(obj, type) and issubclass(obj, base)):
        raise ConfigError(f"{what} {path!r}: not a subclass of {base.__module__}.{base.__qualname__}")
    return obj


def entry_point_classes(group: str, base: type[T]) -> dict[str, type[T]]:
    """Classes that installed packages declare in the entry-point ``group``, by entry-point name."""
    found: dict[str, type[T]] = {}
    for ep in entry_points(group=group):
        found[ep.name] = load_class(ep.value, base, f"entry point {ep.name!r} of {group}")
    return found


def entry_point_objects(group: str) -> dict[str, Any]:
    """Objects (functions, say) that installed packages declare in the entry-point ``group``."""
    return {ep.name: load_object(ep.value, f"entry point {ep.name!r} of {group}") for ep in entry_points(group=group)}
