"""Reading jobs from an artifact store: a URL argument of ``show``/``reindex``/``dashboard`` becomes
a verified local mirror (:mod:`trialbook.store.mirror`) that the normal readers read."""

from __future__ import annotations

from pathlib import Path

from trialbook.layout.store_url import is_url
from trialbook.store.mirror import MirrorResult, mirror


def local_target(target: str, cache_root: Path | None = None) -> tuple[Path, MirrorResult | None]:
    """``target`` as a local path: a URL is mirrored first (only what changed is downloaded)."""
    if not is_url(target):
        return Path(target), None
    result = mirror(target, cache_root=cache_root)
    return result.local, result


def local_roots(targets: list[str], cache_root: Path | None = None) -> list[Path]:
    """Every target as a local root, URLs mirrored."""
    return [local_target(t, cache_root)[0] for t in targets]
