"""`mnsearch dashboard`: a Dash app to browse the Pareto fronts of sweeps (no JAX imported).

Modules: `data` (storage, cached frames, filters), `plots` (figures), `cards` (trial card and
comparison), `layout` (the page), `callbacks` (what it does), `app` (the Dash app and server).
"""

from __future__ import annotations

from mnsearch.dashboard.app import create_app, serve

__all__ = ["create_app", "serve"]
