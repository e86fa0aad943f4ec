"""Readers of results trees in every supported layout, normalised to one model.

Each layout lives in its own module (``native``, ``harbor``, ``velora``, ...) defining a
:class:`~trialbook.sources.base.SourceReader`; :mod:`trialbook.sources.registry` knows them
all: ``open_source(path)`` detects the layout (or takes ``layout=``) and returns the jobs found.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trialbook.sources.base import JobView, SourceReader, TrialView

_BASE_NAMES = ("JobView", "SourceReader", "TrialView")
_REGISTRY_NAMES = ("detect_layout", "get_reader", "open_source", "readers", "register_reader")

__all__ = ["JobView", "SourceReader", "TrialView", *_REGISTRY_NAMES]


def __getattr__(name: str) -> Any:
    """The base classes and the registry's functions, imported on first use (a reader module
    imports this package, and light modules such as ``safe`` must not pull the pydantic models)."""
    if name in _BASE_NAMES:
        from trialbook.sources import base

        return getattr(base, name)
    if name in _REGISTRY_NAMES:
        from trialbook.sources import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'trialbook.sources' has no attribute {name!r}")
