"""The proxy-fidelity figure: final front over proxy front, each configuration's two points
joined, on the Mult-Adds axis of the V1 paper's Figure 4.

`fidelity_links` is the pure data (tested); `fidelity_figure` draws it. The report and the
dashboard show the same figure.
"""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd
import plotly.graph_objects as go

from mnsearch.plots.study import X_TITLES
from mnsearch.results.fidelity import Fidelity

PROXY_COLOR, FINAL_COLOR, LINK_COLOR = "#9e9e9e", "#1f77b4", "rgba(120,120,120,0.45)"


class Links(NamedTuple):
    """Segments from each configuration's proxy point to its final point (None between
    segments, as plotly draws gaps), and the two fronts as lines (x in million Mult-Adds)."""

    x: list[float | None]
    accuracy: list[float | None]
    proxy_front: tuple[list[float], list[float]]
    final_front: tuple[list[float], list[float]]


def fidelity_links(result: Fidelity) -> Links:
    """The figure's lines from a `Fidelity` (pairs sorted by Mult-Adds)."""
    pairs = result.pairs.sort_values("madds")
    x: list[float | None] = []
    accuracy: list[float | None] = []
    for row in pairs.itertuples():
        x += [row.madds / 1e6, row.madds / 1e6, None]
        accuracy += [row.proxy_accuracy, row.final_accuracy, None]

    def front(flag: str, column: str) -> tuple[list[float], list[float]]:
        members = pairs[pairs[flag]]
        return (members["madds"].div(1e6).tolist(), members[column].astype(float).tolist())

    return Links(x, accuracy, front("proxy_front", "proxy_accuracy"),
                 front("final_front", "final_accuracy"))


def fidelity_figure(result: Fidelity, title: str = "Proxy and final accuracy") -> go.Figure:
    """Proxy points (grey, hollow when stopped early), final points (blue), a line joining each
    configuration's two, and both fronts."""
    links, pairs = fidelity_links(result), result.pairs
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=links.x, y=links.accuracy, mode="lines", hoverinfo="skip",
                                line={"color": LINK_COLOR, "width": 1}, name="same configuration"))
    for name, column, color, front in (("proxy", "proxy_accuracy", PROXY_COLOR,
                                        links.proxy_front),
                                       ("final", "final_accuracy", FINAL_COLOR,
                                        links.final_front)):
        stopped = pairs["proxy_stopped"] & (name == "proxy")
        figure.add_trace(go.Scatter(
            x=pairs["madds"] / 1e6, y=pairs[column], mode="markers", name=f"{name} trials",
            marker={"color": color, "size": 9,
                    "symbol": ["circle-open" if flag else "circle" for flag in stopped]},
            text=_labels(pairs, name), hovertemplate="%{text}<br>%{x:.2f} M Mult-Adds · "
            "%{y:.2%}<extra></extra>"))
        figure.add_trace(go.Scatter(x=front[0], y=front[1], mode="lines", name=f"{name} front",
                                    line={"color": color, "width": 2, "shape": "hv"},
                                    hoverinfo="skip"))
    measure = "test" if result.measure == "test_accuracy" else "validation"
    figure.update_layout(title=title, template="plotly_white", height=480,
                         xaxis={"type": "log", "title": X_TITLES["madds"]},
                         yaxis={"title": f"{measure} accuracy (proxy: validation)",
                                "tickformat": ".0%"},
                         legend={"orientation": "h", "y": -0.2})
    return figure


def _labels(pairs: pd.DataFrame, name: str) -> list[str]:
    trial = pairs["proxy_trial"] if name == "proxy" else pairs["final_trial"]
    return [f"{name} trial #{number}: α {'?' if pd.isna(alpha) else f'{alpha:g}'}, "
            f"{int(resolution)} px, {blocks}"
            + (" (stopped early)" if stopped and name == "proxy" else "")
            for number, alpha, resolution, blocks, stopped in zip(
                trial, pairs["alpha"], pairs["resolution"], pairs["block_types"],
                pairs["proxy_stopped"], strict=True)]
