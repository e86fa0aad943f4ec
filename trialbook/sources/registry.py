"""Which reader reads which layout: the built-in readers in detection order, then readers
registered by :func:`register_reader` or installed as entry points (group ``trialbook.readers``).

Readers only define classes; this module imports them (each on first use: a command about a
native job never loads the other six), so nothing here loops back.
"""

from __future__ import annotations

from pathlib import Path

from trialbook.errors import SourceError
from trialbook.plugins import entry_point_classes, is_import_path, load_class
from trialbook.sources.base import JobView, SourceReader

#: Built-in readers in detection order (most specific first): layout name, other names, class.
#: Velora before OpenHands: both trees hold output.jsonl, only Velora's live in Run{N} dirs.
#: mini-swe-agent before SWE-bench: a mini-swe-agent batch may contain SWE-bench's
#: logs/run_evaluation.
BUILTIN_READERS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("native", (), "trialbook.sources.native:NativeReader"),
    ("harbor", ("pier",), "trialbook.sources.harbor:HarborReader"),
    ("legacy", (), "trialbook.sources.legacy:LegacyReader"),
    ("velora", (), "trialbook.sources.velora:VeloraReader"),
    ("openhands", (), "trialbook.sources.openhands:OpenHandsReader"),
    ("miniswe", (), "trialbook.sources.miniswe:MiniSweReader"),
    ("swebench", (), "trialbook.sources.swebench:SwebenchReader"),
)

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


_BUILTIN_INSTANCES: dict[str, SourceReader] = {}


def _builtin_reader(name: str, path: str) -> SourceReader:
    reader = _BUILTIN_INSTANCES.get(name)
    if reader is None:
        reader = _BUILTIN_INSTANCES[name] = load_class(path, SourceReader, "layout")()
    return reader


def _builtin() -> list[SourceReader]:
    return [_builtin_reader(name, path) for name, _, path in BUILTIN_READERS]


def get_reader(layout: str) -> SourceReader:
    """The reader named ``layout`` (or one of its aliases, or a ``package.module:Class`` path)."""
    if is_import_path(layout):
        return load_class(layout, SourceReader, "layout")()
    for name, aliases, path in BUILTIN_READERS:
        if layout == name or layout in aliases:
            return _builtin_reader(name, path)
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
