"""Which reader reads which layout: the built-in readers in detection order, then readers
registered by :func:`register_reader` or installed as entry points (group ``trialbook.readers``).

Readers only define classes; this module imports them, so nothing here loops back.
"""

from __future__ import annotations

from pathlib import Path

from trialbook.errors import SourceError
from trialbook.plugins import entry_point_classes, is_import_path, load_class
from trialbook.sources.base import JobView, SourceReader
from trialbook.sources.harbor import HarborReader
from trialbook.sources.legacy import LegacyReader
from trialbook.sources.miniswe import MiniSweReader
from trialbook.sources.native import NativeReader
from trialbook.sources.openhands import OpenHandsReader
from trialbook.sources.swebench import SwebenchReader
from trialbook.sources.velora import VeloraReader

#: Built-in readers in detection order (most specific first). Velora before OpenHands: both
#: trees hold output.jsonl, only Velora's live in Run{N} dirs. mini-swe-agent before
#: SWE-bench: a mini-swe-agent batch may contain SWE-bench's logs/run_evaluation.
BUILTIN_READERS: tuple[type[SourceReader], ...] = (
    NativeReader, HarborReader, LegacyReader, VeloraReader, OpenHandsReader, MiniSweReader, SwebenchReader)

_registered: list[SourceReader] = []
_entry_points_loaded = False


def register_reader(cls: type[SourceReader]) -> type[SourceReader]:
    """Make a layout available to detection (after the built-ins) and ``--layout``; usable as a decorator."""
    global _registered
    _registered = [r for r in _registered if r.name != cls.name] + [cls()]
    return cls


def readers() -> list[SourceReader]:
    """Every reader in detection order: built-in, registered, then installed entry points."""
    global _entry_points_loaded
    if not _entry_points_loaded:
        _entry_points_loaded = True
        for cls in entry_point_classes("trialbook.readers", SourceReader).values():
            register_reader(cls)
    return [*_builtin(), *_registered]


_BUILTIN_INSTANCES: list[SourceReader] = []


def _builtin() -> list[SourceReader]:
    if not _BUILTIN_INSTANCES:
        _BUILTIN_INSTANCES.extend(cls() for cls in BUILTIN_READERS)
    return _BUILTIN_INSTANCES


def get_reader(layout: str) -> SourceReader:
    """The reader named ``layout`` (or one of its aliases, or a ``package.module:Class`` path)."""
    if is_import_path(layout):
        return load_class(layout, SourceReader, "layout")()
    found = {key: r for r in readers() for key in (r.name, *r.aliases)}
    if layout not in found:
        raise SourceError(f"unknown layout {layout!r}; known: {', '.join(sorted(found))}")
    return found[layout]


def detect_layout(path: Path) -> str:
    """The first layout (in detection order) that recognises ``path``."""
    if not path.exists():
        raise SourceError("path not found", path, not_found=True)
    candidates = readers()
    for reader in candidates:
        if reader.detect(path):
            return reader.name
    raise SourceError("no known results layout here (tried: " + ", ".join(
        sorted(r.name for r in candidates)) + "); use --layout to force one", path)


def open_source(path: str | Path, layout: str | None = None) -> list[JobView]:
    """Read every job under ``path``, detecting the layout unless ``layout`` is given."""
    path = Path(path)
    name = layout or detect_layout(path)
    return get_reader(name).read(path)
