"""What a reindex is given: a directory to index and its layout (light: no reader is imported)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class RootSpec:
    """A directory to index, with its layout (None: detected)."""

    path: Path
    layout: str | None = None
