"""The page: study picker, colour and filter controls, the Pareto plot, the trial card, the
comparison, the hypervolume history. Ids are stable: callbacks and the browser test use them."""

from __future__ import annotations

from dash import dcc, html

from mnsearch.dashboard.plots import COLOR_BY, empty_plot

REFRESH_MS = 5000  # how often the page polls the storage while a sweep runs
ROW = {"display": "flex", "gap": "12px", "flexWrap": "wrap", "alignItems": "flex-end"}
PANEL = {"flex": "1 1 480px", "minWidth": "360px"}


def _labelled(label: str, control: object, width: str = "180px") -> html.Div:
    return html.Div([html.Label(label, style={"fontSize": "12px", "color": "#555"}), control],
                    style={"width": width})


def _filters() -> html.Div:
    return html.Div([
        _labelled("Mult-Adds ≤ (millions)", dcc.Input(id="filter-madds", type="number",
                                                      min=0, debounce=True, placeholder="any")),
        _labelled("accuracy ≥", dcc.Input(id="filter-accuracy", type="number", min=0, max=1,
                                          step="any", debounce=True, placeholder="any")),
        _labelled("block types", dcc.Dropdown(id="filter-blocks", multi=True,
                                              placeholder="all")),
        _labelled("α", dcc.Dropdown(id="filter-alpha", multi=True, placeholder="all")),
        _labelled("resolution (ρ)", dcc.Dropdown(id="filter-resolution", multi=True,
                                                 placeholder="all")),
    ], style=ROW)


def build_layout(storage_label: str, default_studies: list[str]) -> html.Div:
    """The whole page; the study selection is resolved from the URL (?study=…) on load."""
    return html.Div([
        dcc.Location(id="url"),
        dcc.Store(id="default-studies", data=default_studies),
        dcc.Store(id="data-signature"), dcc.Store(id="selected-trial"),
        dcc.Store(id="compare-trials", data=[]),
        dcc.Interval(id="refresh", interval=REFRESH_MS),
        html.H2("mnsearch · Pareto browser", style={"margin": "0 0 4px 0"}),
        html.Div(f"storage: {storage_label}", id="storage-label",
                 style={"fontSize": "12px", "color": "#666"}),
        html.Div(id="message", role="alert", style={"color": "#a00", "margin": "6px 0"}),
        html.Div([
            _labelled("studies", dcc.Dropdown(id="studies", multi=True,
                                              placeholder="pick one or more studies"),
                      "420px"),
            _labelled("colour by", dcc.RadioItems(
                id="color-by", value="alpha", inline=True,
                options=[{"label": label, "value": key} for key, label in COLOR_BY.items()]),
                "360px"),
        ], style=ROW),
        _filters(),
        html.Div(id="status", style={"margin": "6px 0", "fontSize": "14px"}),
        dcc.Graph(id="pareto-graph", figure=empty_plot("loading…"), style={"height": "560px"},
                  config={"displaylogo": False, "scrollZoom": True}),
        html.Div([
            html.Div([html.H3("Trial"), html.Button("Add to comparison", id="compare-add",
                                                    disabled=True),
                      html.Div("Click a point to see its trial.", id="trial-card")],
                     style=PANEL),
            html.Div([html.H3("Comparison"), html.Button("Clear", id="compare-clear"),
                      html.Div(id="comparison")], style=PANEL),
        ], style=ROW),
        html.H3("Hypervolume"),
        html.P("Losses 1 − accuracy and Mult-Adds / the largest of the trained trials "
               "(stopped ones included), reference point (1, 1); higher is better.",
               style={"fontSize": "12px", "color": "#666"}),
        dcc.Graph(id="hypervolume-graph", figure=empty_plot(""), style={"height": "320px"},
                  config={"displaylogo": False}),
    ], style={"fontFamily": "system-ui, sans-serif", "margin": "12px 24px"})
