"""The dashboard's proxy-fidelity panel: a sweep's study beside its final study.

When the selection holds a proxy study and its final study (`mnsearch finalize`), the panel
shows the report's fidelity figure (each configuration's proxy and final point joined, both
fronts) and headline table; when it holds only one of them, it names the other to add.
"""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
import pandas as pd
from dash import dcc, html

from mnsearch.dashboard.data import DashboardData
from mnsearch.dashboard.plots import styled
from mnsearch.plots.fidelity import fidelity_figure
from mnsearch.results.fidelity import fidelity
from mnsearch.results.frames import study_objectives
from mnsearch.search.storage import load_study

HINT = ("Select a sweep's study together with its final study (made by `mnsearch finalize`) "
        "to see how far the proxy front can be trusted.")


def fidelity_panel(data: DashboardData, studies: list[str]) -> list[Any]:
    """The panel's children for the selected studies."""
    links = data.links()  # final study -> its proxy study
    pairs = [(links[final], final) for final in studies
             if final in links and links[final] in studies]
    if not pairs:
        missing = [f"{proxy} → {final}" for final, proxy in links.items()
                   if (proxy in studies) != (final in studies)]
        note = (f"Add the linked study to the selection: {', '.join(missing)}." if missing
                else HINT)
        return [html.P(note, className="placeholder-note mb-0")]
    return [child for proxy, final in pairs for child in _pair(data, proxy, final)]


def _pair(data: DashboardData, proxy: str, final: str) -> list[Any]:
    objectives = study_objectives(load_study(data.storage(), proxy))
    proxy_frame, final_frame = data.frame(proxy), data.frame(final)
    by_validation = fidelity(proxy_frame, final_frame, objectives)
    title = html.H6(f"{proxy} → {final}", className="fw-semibold")
    if by_validation.pairs.empty:
        return [title, html.P("No final trial has completed yet.", className="text-muted")]
    by_test = fidelity(proxy_frame, final_frame, objectives, measure="test_accuracy")
    table = by_validation.summary().rename(columns={"value": "final validation"})
    table["final test"] = by_test.summary()["value"]
    figure = styled(fidelity_figure(by_validation, ""), accuracy_axis=True, height=420,
                    legend={"orientation": "h", "y": -0.18})
    return [title, dbc.Row([
        dbc.Col(_table(table), lg=5),
        dbc.Col(dcc.Graph(figure=figure, config={"displaylogo": False}), lg=7),
    ], className="g-3 mb-3")]


def _table(frame: pd.DataFrame) -> dbc.Table:
    return dbc.Table.from_dataframe(frame, striped=True, bordered=False, hover=True, size="sm",
                                    className="small mb-0")
