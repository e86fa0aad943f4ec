"""Where a dashboard is built from and to, and the static part of the site (page, code, plotly).

* With a block (``--block`` or the current directory): its index ``results/index.db``, its
  roots (jobs directory and ``index.roots``) plus any ROOTs given, the site in
  ``dashboard/site/`` and the cache in ``dashboard/.cache/``.
* Without a block: the ROOTs given, the site in ``--out`` (default ``./dashboard/site``),
  the cache beside it (``.cache`` next to a directory named ``site``, else ``<out>.cache``)
  holding the index too, so a foreign tree is never written into.

The site's code is the package's ``static/`` directory; plotly.js is copied from the
``plotly`` Python package (``package_data/plotly.min.js``), never from a CDN.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from trialbook.dashboard.jsdata import write_if_changed
from trialbook.errors import ConfigError, TrialbookError
from trialbook.index.locate import block_roots, find_block_or_none
from trialbook.index.reindex import RootSpec
from trialbook.layout.paths import BlockPaths
from trialbook.sources.registry import detect_layout

#: Static files of the site: package file name -> path inside the site.
STATIC_FILES = {"index.html": "index.html", "style.css": "assets/style.css", "core.js": "assets/core.js",
                "pages.js": "assets/pages.js", "job.js": "assets/job.js", "trial.js": "assets/trial.js",
                "compare.js": "assets/compare.js", "app.js": "assets/app.js"}
PLOTLY_TARGET = "assets/plotly.min.js"


@dataclass
class SiteSpec:
    """Everything a build needs to know about where things are."""

    out: Path
    cache: Path
    db: Path
    roots: list[RootSpec] = field(default_factory=list)
    block: BlockPaths | None = None

    @property
    def data(self) -> Path:
        return self.out / "data"


def _cache_for(out: Path) -> Path:
    return out.parent / ".cache" if out.name == "site" else out.with_name(out.name + ".cache")


def resolve_site(block_dir: Path | None = None, roots: list[Path] | None = None, out: Path | None = None,
                 db: Path | None = None, layout: str | None = None) -> SiteSpec:
    """The :class:`SiteSpec` for the command line's ``--block``, ROOTs, ``--out`` and ``--db``."""
    block = find_block_or_none(block_dir)
    if block_dir is not None and block is None:
        raise ConfigError("not a block (no config.yaml here or above)", block_dir, not_found=True)
    specs = block_roots(block) if block is not None else []
    for root in roots or ():
        if not root.exists():
            raise TrialbookError("results root not found", root, not_found=True)
        specs.append(RootSpec(Path(os.path.abspath(root)), layout or detect_layout(root)))
    if block is None and not specs:
        raise TrialbookError("nothing to show: run inside a block, give --block DIR, or name results ROOTs")
    if out is not None:
        site = Path(os.path.abspath(out))
        cache = _cache_for(site) if block is None or site != block.dashboard_site else block.dashboard_cache
    elif block is not None:
        site, cache = block.dashboard_site, block.dashboard_cache
    else:
        site = Path(os.path.abspath("dashboard/site"))
        cache = _cache_for(site)
    index = Path(os.path.abspath(db)) if db is not None else (block.index_db if block is not None else cache / "index.db")
    return SiteSpec(out=site, cache=cache, db=index, roots=specs, block=block)


def plotly_js() -> bytes:
    """plotly.js as shipped inside the ``plotly`` Python package."""
    try:
        return resources.files("plotly").joinpath("package_data", "plotly.min.js").read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise TrialbookError(f"plotly.js not found in the plotly package ({exc}); "
                             "reinstall trialbook's dependencies") from None


def write_static(out: Path) -> int:
    """Copy the page, its code and plotly.js into the site (only files that changed); returns how many."""
    static = resources.files("trialbook.dashboard").joinpath("static")
    written = 0
    for name, target in STATIC_FILES.items():
        written += write_if_changed(out / target, static.joinpath(name).read_bytes())
    written += write_if_changed(out / PLOTLY_TARGET, plotly_js())
    return written
