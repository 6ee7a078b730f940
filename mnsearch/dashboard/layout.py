"""The page: a navbar naming the study, a toolbar (studies, colour, filters), the Pareto plot
with the trial card in a side panel beside it, the trial table (paged on the server), the
comparison, the proxy fidelity (a sweep and its final study), the hypervolume history.

The plot and the trial panel have the same fixed height and the panel scrolls inside itself,
so opening a card (or a longer one) moves nothing else on the page; the comparison sits below
both with a reserved minimum height. Ids are stable: callbacks and the browser test use them.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from mnsearch.dashboard.plots import COLOR_BY, empty_plot
from mnsearch.dashboard.table import trial_table

REFRESH_MS = 5000  # how often the page polls the storage while a sweep runs
PLOT_HEIGHT = 560  # px; the trial panel beside the plot is as tall (see dashboard.css)
GRAPH_CONFIG = {"displaylogo": False, "scrollZoom": True}


def _labelled(label: str, control: object, **width: object) -> dbc.Col:
    """A control with its label above, in a toolbar column (`width` as dbc.Col takes it)."""
    return dbc.Col([dbc.Label(label, className="control-label"), control],
                   **(width or {"xs": 12, "md": "auto"}))


def _navbar(storage_label: str) -> dbc.Navbar:
    """Brand, the selected studies (filled in by a callback), and the storage on the right."""
    return dbc.Navbar(dbc.Container([
        html.Div([html.Span("mnsearch", className="navbar-brand me-2"),
                  html.Span("Pareto browser", className="text-white-50 me-3"),
                  html.Span(id="navbar-study", className="navbar-study")],
                 className="d-flex align-items-center"),
        html.Span(f"storage: {storage_label}", id="storage-label",
                  className="text-white-50 small text-truncate navbar-storage"),
    ], fluid=True), color="dark", dark=True, className="mb-3 py-2")


def _toolbar() -> dbc.Card:
    """Which studies, how to colour them, and which trials to keep."""
    number = {"type": "number", "debounce": True, "placeholder": "any"}
    return dbc.Card(dbc.CardBody([
        dbc.Row([
            _labelled("Studies", dcc.Dropdown(id="studies", multi=True,
                                              placeholder="pick one or more studies"),
                      xs=12, lg=5),
            _labelled("Colour by", dbc.RadioItems(
                id="color-by", value="alpha", className="btn-group segmented",
                inputClassName="btn-check", labelClassName="btn btn-outline-secondary",
                labelCheckedClassName="active",
                options=[{"label": label, "value": key} for key, label in COLOR_BY.items()])),
        ], className="g-3 mb-2 align-items-end"),
        dbc.Row([
            _labelled("Mult-Adds ≤ (M)", dbc.Input(id="filter-madds", min=0, **number),
                      xs=6, md="auto", className="filter-number"),
            _labelled("val accuracy ≥ (%)", dbc.Input(id="filter-accuracy", min=0, max=100,
                                                      step="any", **number),
                      xs=6, md="auto", className="filter-number"),
            _labelled("Block types", dcc.Dropdown(id="filter-blocks", multi=True,
                                                  placeholder="all"), xs=12, md=True),
            _labelled("α", dcc.Dropdown(id="filter-alpha", multi=True, placeholder="all"),
                      xs=6, md=True),
            _labelled("Resolution", dcc.Dropdown(id="filter-resolution", multi=True,
                                                 placeholder="all"), xs=6, md=True),
        ], className="g-3 align-items-end"),
    ]), className="mb-3 shadow-sm")


def _header(title: str, *right: object) -> dbc.CardHeader:
    return dbc.CardHeader([html.Span(title, className="fw-semibold text-nowrap me-3"),
                           html.Div(list(right), className="ms-auto d-flex gap-2 text-end "
                                                              "align-items-center")],
                          className="d-flex align-items-center panel-header")


def _explorer() -> dbc.Row:
    """The Pareto plot and, beside it, the trial card: both the same fixed height."""
    plot = dbc.Card([
        _header("Accuracy vs Mult-Adds", html.Span(id="status", className="small text-muted")),
        dbc.CardBody(dcc.Graph(id="pareto-graph", figure=empty_plot("loading…"),
                               style={"height": f"{PLOT_HEIGHT}px"}, config=GRAPH_CONFIG),
                     className="p-1"),
    ], className="shadow-sm h-100")
    card = dbc.Card([
        _header("Trial", dbc.Button("Add to comparison", id="compare-add", disabled=True,
                                    size="sm", color="primary")),
        dbc.CardBody(html.Div("Click a point in the plot to open its trial card.",
                              className="placeholder-note"),
                     id="trial-card", className="panel-body"),
    ], className="shadow-sm h-100")
    return dbc.Row([dbc.Col(plot, lg=8), dbc.Col(card, lg=4)], className="g-3 mb-3")


def build_layout(storage_label: str, default_studies: list[str]) -> html.Div:
    """The whole page; the study selection is resolved from the URL (?study=…) on load."""
    table = dbc.Card([
        _header("Trials", html.Span("the trials that pass the filters; click a row for its "
                                    "card, a header to sort", className="small text-muted "
                                    "d-none d-md-inline")),
        dbc.CardBody(trial_table(), className="p-2"),
    ], className="shadow-sm mb-3")
    comparison = dbc.Card([
        _header("Comparison", dbc.Button("Clear", id="compare-clear", size="sm",
                                         color="secondary", outline=True)),
        dbc.CardBody(id="comparison", className="comparison-body"),
    ], className="shadow-sm mb-3")
    fidelity = dbc.Card([
        _header("Proxy fidelity", html.Span(
            "a sweep's low-fidelity accuracy against its final models' (mnsearch finalize)",
            className="small text-muted d-none d-md-inline")),
        dbc.CardBody(id="fidelity"),
    ], className="shadow-sm mb-3")
    hypervolume = dbc.Card([
        _header("Hypervolume", html.Span(
            "losses 1 − accuracy and Mult-Adds / the largest of the trained trials (stopped "
            "ones included), reference point (1, 1); higher is better",
            className="small text-muted d-none d-md-inline")),
        dbc.CardBody(dcc.Graph(id="hypervolume-graph", figure=empty_plot(""),
                               style={"height": "300px"}, config={"displaylogo": False}),
                     className="p-1"),
    ], className="shadow-sm mb-4")
    return html.Div([
        dcc.Location(id="url"),
        dcc.Store(id="default-studies", data=default_studies),
        dcc.Store(id="data-signature"), dcc.Store(id="selected-trial"),
        dcc.Store(id="compare-trials", data=[]),
        dcc.Interval(id="refresh", interval=REFRESH_MS),
        _navbar(storage_label),
        dbc.Container([
            dbc.Alert(id="message", color="warning", is_open=False, className="mb-3"),
            _toolbar(), _explorer(), table, comparison, fidelity, hypervolume,
        ], fluid=True, className="px-4"),
    ])
