"""``trialbook dashboard --serve``: the site on 127.0.0.1, rebuilt as jobs change.

A plain static HTTP server (the standard library's, bound to the loopback interface only)
serves the built site from a thread while the main loop rebuilds it every ``interval``
seconds; the rebuild is incremental (an unchanged tree costs a few stats). The page polls
``data/stamp.js``, which changes after every rebuild that wrote something, so a running job's
progress appears without a reload.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from trialbook.dashboard.build import BuildStats, build_site
from trialbook.dashboard.site import SiteSpec

CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'none'; object-src 'none'; frame-src 'none'; base-uri 'none'; "
       "form-action 'none'; frame-ancestors 'none'")


class SiteHandler(SimpleHTTPRequestHandler):
    """Static files of the site with the site's CSP; data never cached, code revalidated."""

    def end_headers(self) -> None:
        # data changes under a live view; the code may be cached but is revalidated (and then
        # Chromium can reuse its compiled plotly.js instead of compiling 4.8 MB again)
        self.send_header("Cache-Control", "no-cache" if self.path.startswith("/assets/") else "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Referrer-Policy", "no-referrer")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        """Quiet: a live view polls every few seconds."""


def start_server(spec: SiteSpec, port: int = 8765) -> ThreadingHTTPServer:
    """Serve ``spec.out`` on 127.0.0.1:``port`` (0: any free port) from a daemon thread."""
    handler = functools.partial(SiteHandler, directory=str(spec.out))
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="dashboard-http", daemon=True).start()
    return server


def serve(spec: SiteSpec, *, port: int = 8765, interval: float = 2.0, workers: int | None = None,
          on_build: Callable[[BuildStats], None] | None = None, on_ready: Callable[[str], None] | None = None,
          stop: threading.Event | None = None) -> None:
    """Build, serve, and rebuild every ``interval`` seconds until ``stop`` is set (or Ctrl-C)."""
    stop = stop or threading.Event()
    stats = build_site(spec, workers=workers)
    if on_build:
        on_build(stats)
    server = start_server(spec, port)
    try:
        if on_ready:
            on_ready(f"http://127.0.0.1:{server.server_address[1]}/")
        while not stop.wait(interval):
            stats = build_site(spec, workers=workers)
            if on_build and (stats.trials_built or stats.trials_removed or stats.files_written):
                on_build(stats)
    finally:
        server.shutdown()
        server.server_close()
