"""The Dash app and its server: local assets only, 127.0.0.1 unless told otherwise.

Dash serves its JavaScript (React, plotly.js) from the installed packages (`serve_locally`),
with no external scripts or stylesheets, so the page works without Internet access and sends
no request outside the server. Debug mode (which would expose a code-reloading dev server) is
never on.
"""

from __future__ import annotations

from pathlib import Path

from dash import Dash
from werkzeug.serving import BaseWSGIServer, make_server

from mnsearch.dashboard.callbacks import register
from mnsearch.dashboard.data import DashboardData
from mnsearch.dashboard.layout import build_layout

ASSETS = Path(__file__).parent / "assets"  # does not exist: the app serves no extra files


def create_app(data: DashboardData, studies: list[str] | None = None) -> Dash:
    """The dashboard over `data`'s storage; `studies` are shown first (unknown ones are named
    in the page with the list of available ones)."""
    app = Dash(__name__, title="mnsearch dashboard", serve_locally=True,
               assets_folder=str(ASSETS), include_assets_files=False, external_scripts=[],
               external_stylesheets=[], update_title=None)
    app.layout = build_layout(data.label, list(studies or []))
    register(app, data)
    return app


def make_dashboard_server(app: Dash, host: str = "127.0.0.1", port: int = 8050,
                          ) -> BaseWSGIServer:
    """A threaded WSGI server for `app` (port 0 picks a free one: see `server.port`)."""
    return make_server(host, port, app.server, threaded=True)


def serve(app: Dash, host: str = "127.0.0.1", port: int = 8050) -> None:
    """Serve until interrupted, after printing the address."""
    server = make_dashboard_server(app, host, port)
    print(f"mnsearch dashboard on http://{host}:{server.port}/ (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
