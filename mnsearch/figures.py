"""Plotly figures; each is computed by a pure function (tested) and drawn by a thin one.

`accuracy_vs_madds` is the V1 paper's Figure 4: accuracy against Mult-Adds on a log axis, with
lines joining the same α across resolutions and the same resolution across α, and the Pareto
front drawn over the cloud.
"""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd
import plotly.graph_objects as go

from mnsearch.results import pareto_frame


class Line(NamedTuple):
    label: str
    madds: list[float]
    accuracy: list[float]


def accuracy_lines(frame: pd.DataFrame) -> tuple[list[Line], list[Line], Line]:
    """Lines of equal α, lines of equal resolution, and the Pareto front (the figure's data)."""
    points = frame[(frame["state"] == "COMPLETE") & frame["duplicate_of"].isna()]
    points = points.dropna(subset=["val_accuracy", "madds"])

    def lines(key: str, name: str) -> list[Line]:
        return [Line(f"{name} {value:g}", list(group.sort_values("madds")["madds"] / 1e6),
                     list(group.sort_values("madds")["val_accuracy"]))
                for value, group in points.groupby(key) if len(group) > 1]

    front = pareto_frame(points)
    return (lines("alpha", "α"), lines("resolution", "resolution"),
            Line("Pareto front", list(front["madds"] / 1e6), list(front["val_accuracy"])))


def accuracy_vs_madds(frame: pd.DataFrame, title: str = "Accuracy vs Mult-Adds") -> go.Figure:
    """The V1 paper's Figure 4 for a study (see `accuracy_lines`)."""
    by_alpha, by_resolution, front = accuracy_lines(frame)
    figure = go.Figure()
    for line in by_alpha:
        figure.add_scatter(x=line.madds, y=line.accuracy, name=line.label, mode="lines+markers")
    for line in by_resolution:
        figure.add_scatter(x=line.madds, y=line.accuracy, name=line.label, mode="lines",
                           line={"dash": "dot", "width": 1}, opacity=0.6)
    figure.add_scatter(x=front.madds, y=front.accuracy, name=front.label, mode="lines+markers",
                       line={"color": "black", "width": 3}, marker={"size": 10,
                                                                     "symbol": "star"})
    figure.update_layout(title=title, xaxis_title="Million Mult-Adds (log scale)",
                         yaxis_title="validation accuracy", xaxis_type="log",
                         template="plotly_white")
    return figure
