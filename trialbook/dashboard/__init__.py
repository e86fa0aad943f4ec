"""The dashboard: a static results site built from the index and the readers, plus a live server.

``build_site(resolve_site(...))`` writes ``dashboard/site/`` (openable from disk or any static
server); :func:`serve` serves it on 127.0.0.1 and rebuilds it as jobs change.
"""

from trialbook.dashboard.build import BuildStats, build_site
from trialbook.dashboard.site import SiteSpec, resolve_site

__all__ = ["BuildStats", "SiteSpec", "build_site", "resolve_site"]
