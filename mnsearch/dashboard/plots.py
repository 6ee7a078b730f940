"""The dashboard's figures: the WebGL Pareto plot with architecture hovers, hypervolume lines.

`pareto_groups` computes what is drawn (tested); `pareto_plot` draws it. Every trial trace is a
`go.Scattergl` (WebGL), so 10,000 points pan and hover smoothly; the few front points are SVG.
Each trial trace carries `meta="trials"` and `customdata` [study, number, …] so that a click
names its trial and a test can count the plotted points.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from mnsearch.results.frames import hypervolume_history, pareto_frame

COLOR_BY = {"alpha": "α", "block_types": "block types", "resolution": "resolution",
            "study": "study"}
HOVER = ("<b>%{customdata[0]} #%{customdata[1]}</b><br>α %{customdata[2]}, "
         "%{customdata[3]} px (ρ %{customdata[4]:.3f})<br>blocks: %{customdata[5]}<br>"
         "Mult-Adds %{x:.2f} M · params %{customdata[6]:.3f} M<br>"
         "accuracy %{y:.4f}<extra></extra>")


class Group(NamedTuple):
    """One coloured trace: its legend label and its points."""

    label: str
    points: pd.DataFrame


def pareto_groups(points: pd.DataFrame, color_by: str) -> tuple[list[Group], pd.DataFrame]:
    """Points split by the colour key (sorted labels), and the front of accuracy vs Mult-Adds."""
    if color_by not in COLOR_BY:
        color_by = "alpha"
    groups = [Group(f"{COLOR_BY[color_by]} {_text(value)}", group)
              for value, group in points.groupby(color_by, dropna=False, sort=True)]
    front = pareto_frame(points.assign(state="COMPLETE", duplicate_of=None)) if len(points) \
        else points
    return groups, front


def _text(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _customdata(points: pd.DataFrame) -> np.ndarray:
    frame = pd.DataFrame({"study": points["study"], "number": points["number"].astype(int),
                          "alpha": points["alpha"], "resolution": points["resolution"],
                          "rho": points["rho"].astype(float).round(4),
                          "blocks": points["block_types"],
                          "params": (points["params"] / 1e6).round(4)})
    return frame.to_numpy()  # an array, not lists: plotly validates arrays without a walk


def pareto_plot(points: pd.DataFrame, color_by: str, total: int) -> go.Figure:
    """Accuracy vs Mult-Adds (log x): one WebGL trace per colour group, the front on top."""
    groups, front = pareto_groups(points, color_by)
    figure = go.Figure()
    for group in groups:
        figure.add_trace(go.Scattergl(
            x=(group.points["madds"] / 1e6).round(4).to_numpy(),
            y=group.points["val_accuracy"].round(5).to_numpy(),
            customdata=_customdata(group.points), mode="markers", name=group.label,
            meta="trials", hovertemplate=HOVER, marker={"size": 7, "opacity": 0.75}))
    if len(front):
        figure.add_trace(go.Scatter(
            x=front["madds"] / 1e6, y=front["val_accuracy"], mode="lines", name="Pareto front",
            meta="front", hoverinfo="skip", line={"color": "black", "width": 2, "shape": "hv"}))
    figure.update_layout(
        title=f"{len(points):,} of {total:,} evaluated trials · front {len(front)}",
        xaxis={"title": "Million Mult-Adds (log scale)", "type": "log"},
        yaxis={"title": "validation accuracy"}, template="plotly_white", hovermode="closest",
        clickmode="event", uirevision="pareto", legend={"itemsizing": "constant"},
        margin={"t": 50, "l": 60, "r": 10, "b": 50})
    return figure


def empty_plot(message: str) -> go.Figure:
    """An empty figure that says why it is empty (no study, no completed trials…)."""
    figure = go.Figure()
    figure.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper",
                          yref="paper", font={"size": 16})
    figure.update_layout(template="plotly_white", xaxis={"visible": False},
                         yaxis={"visible": False}, margin={"t": 30, "l": 30, "r": 10, "b": 30})
    return figure


def steps(history: pd.DataFrame) -> pd.DataFrame:
    """The rows where the hypervolume changes, and the last one: the same step line with a
    few dozen points instead of one per trial (drawn as SVG, cheaper than another WebGL plot)."""
    if history.empty:
        return history
    changed = history["hypervolume"].diff().ne(0)
    changed.iloc[-1] = True
    return history[changed]


def hypervolume_plot(frame: pd.DataFrame) -> go.Figure:
    """Hypervolume by trial and by compute time, one line per study (each with its own
    reference point: see `mnsearch.results.frames`)."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=("hypervolume over trials",
                                                           "over training time"))
    palette = qualitative.Plotly
    for index, (name, group) in enumerate(frame.groupby("study", sort=True)):
        history = steps(hypervolume_history(group))
        if history.empty:
            continue
        line = {"shape": "hv", "color": palette[index % len(palette)]}
        figure.add_scatter(x=history["number"], y=history["hypervolume"], mode="lines",
                           line=line, name=str(name), legendgroup=str(name), row=1, col=1)
        figure.add_scatter(x=history["compute_seconds"] / 60, y=history["hypervolume"],
                           mode="lines", line=line, name=str(name), legendgroup=str(name),
                           showlegend=False, row=1, col=2)
    figure.update_xaxes(title_text="trial number", row=1, col=1)
    figure.update_xaxes(title_text="training minutes (cumulative)", row=1, col=2)
    figure.update_layout(template="plotly_white", height=320, uirevision="hypervolume",
                         margin={"t": 40, "l": 60, "r": 10, "b": 50})
    return figure
