"""The Dash app and its server: local assets only, 127.0.0.1 unless told otherwise.

Dash serves its JavaScript (React, plotly.js, dash-bootstrap-components) from the installed
packages (`serve_locally`) and the stylesheets from `assets/` (Bootstrap 5.3.6's CSS, vendored
from the npm package `bootstrap` because dash-bootstrap-components ships only CDN links to it,
and the page's own `dashboard.css`), with no external scripts or stylesheets, so the page works
without Internet access and sends no request outside the server. Debug mode (which would
expose a code-reloading dev server) is never on.

The page polls every 5 s, so werkzeug's one access line per request would flood the terminal
during a sweep: access lines are written only with `verbose` (errors always are).
"""

from __future__ import annotations

from pathlib import Path

from dash import Dash
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from mnsearch.dashboard.callbacks import register
from mnsearch.dashboard.data import DashboardData
from mnsearch.dashboard.layout import build_layout
from mnsearch.plots.aggregate import DENSITY_ABOVE

ASSETS = Path(__file__).parent / "assets"  # bootstrap.min.css, dashboard.css (in this order)


class QuietRequestHandler(WSGIRequestHandler):
    """werkzeug's handler without the access line per request; errors are still logged."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


def create_app(data: DashboardData, studies: list[str] | None = None,
               density_above: int = DENSITY_ABOVE) -> Dash:
    """The dashboard over `data`'s storage; `studies` are shown first (unknown ones are named
    in the page with the list of available ones); past `density_above` points the dominated
    trials are drawn as a density."""
    app = Dash(__name__, title="mnsearch dashboard", serve_locally=True,
               assets_folder=str(ASSETS), include_assets_files=True, external_scripts=[],
               external_stylesheets=[], update_title=None)
    app.layout = build_layout(data.label, list(studies or []))
    register(app, data, density_above)
    return app


def make_dashboard_server(app: Dash, host: str = "127.0.0.1", port: int = 8050,
                          verbose: bool = False) -> BaseWSGIServer:
    """A threaded WSGI server for `app` (port 0 picks a free one: see `server.port`);
    `verbose` logs one line per request."""
    handler = WSGIRequestHandler if verbose else QuietRequestHandler
    return make_server(host, port, app.server, threaded=True, request_handler=handler)


def serve(app: Dash, host: str = "127.0.0.1", port: int = 8050, verbose: bool = False) -> None:
    """Serve until interrupted, after printing the address."""
    server = make_dashboard_server(app, host, port, verbose)
    print(f"mnsearch dashboard on http://{host}:{server.port}/ (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
