"""The dashboard's figures: the WebGL Pareto plot with architecture hovers, hypervolume lines.

What is drawn is computed by pure functions, shared with the report where they mean the same
thing: the front is `mnsearch.plots.study.pareto_cloud`'s, the hypervolume lines are
`hypervolume_lines`'; `pareto_groups` adds the colour groups (tested). The functions here only
draw, in the page's look (`styled`: one font, percent accuracy axes, tight margins).

Every trial trace is a `go.Scattergl` (WebGL), so 10,000 points pan and hover smoothly; the few
front points are SVG. Each trial trace carries `meta="trials"` and `customdata` [study, number,
…] so that a click names its trial and a test can count the plotted points. Past
`DENSITY_ABOVE` points (100,000 would be 7 MB of JSON that the browser never finishes drawing)
only the front's trials are markers, in SVG (a WebGL context costs the first render half a
second), and the dominated ones are a density counted on the server (`meta="density"`, a
heatmap of 120 × 80 cells: `mnsearch.plots.aggregate`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from mnsearch.plots.aggregate import DENSITY_ABOVE, Density, density, density_trace
from mnsearch.plots.study import WEBGL_ABOVE, X_TITLES, hypervolume_lines, pareto_cloud

COLOR_BY = {"alpha": "α", "block_types": "block types", "resolution": "resolution",
            "study": "study"}
HOVER = ("<b>%{customdata[0]} #%{customdata[1]}</b><br>α %{customdata[2]}, "
         "%{customdata[3]} px (ρ %{customdata[4]:.3f})<br>blocks: %{customdata[5]}<br>"
         "Mult-Adds %{x:.2f} M · params %{customdata[6]:.3f} M<br>"
         "accuracy %{y:.2%}<extra></extra>")
FONT = {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 12,
        "color": "#212529"}  # Bootstrap's body font and colour: figures match the page
# '.0%' reads 87%; zoomed in far enough that ticks are < 1 point apart, decimals appear
# instead of repeated labels (dtick is a fraction: 0.001 is 0.1 points).
PERCENT_STOPS = [{"dtickrange": [None, 0.0009], "value": ".2%"},
                 {"dtickrange": [0.0009, 0.009], "value": ".1%"}]
# 1-2-5 ticks on the log Mult-Adds axis, labelled in full (plotly's own label each digit)
MADDS_TICKS = [step * 10.0 ** power for power in range(-1, 5) for step in (1, 2, 5)]
ACCURACY_AXIS = {"title": "validation accuracy", "tickformat": ".0%",
                 "tickformatstops": PERCENT_STOPS}


class Group(NamedTuple):
    """One coloured trace: its legend label and its points."""

    label: str
    points: pd.DataFrame


def pareto_groups(points: pd.DataFrame, color_by: str, density_above: int = DENSITY_ABOVE,
                  ) -> tuple[list[Group], pd.DataFrame, Density | None]:
    """Points split by the colour key (sorted labels), the front of accuracy vs Mult-Adds, and
    the density of the dominated points when there are more than `density_above` points (then
    the groups hold the front's points only; else every point, and no density)."""
    if color_by not in COLOR_BY:
        color_by = "alpha"
    cloud = pareto_cloud(points)
    shown, dominated = points, None
    if len(points) > density_above:
        shown = cloud.front
        dominated = density(cloud.dominated["madds"] / 1e6, cloud.dominated["val_accuracy"])
    groups = [Group(f"{COLOR_BY[color_by]} {_text(value)}", group)
              for value, group in shown.groupby(color_by, dropna=False, sort=True)]
    return groups, cloud.front, dominated


def _text(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _customdata(points: pd.DataFrame) -> np.ndarray:
    frame = pd.DataFrame({"study": points["study"], "number": points["number"].astype(int),
                          "alpha": points["alpha"], "resolution": points["resolution"],
                          "rho": points["rho"].astype(float).round(4),
                          "blocks": points["block_types"],
                          "params": (points["params"] / 1e6).round(4)})
    return frame.to_numpy()  # an array, not lists: plotly validates arrays without a walk


def styled(figure: go.Figure, accuracy_axis: bool = False, **layout: object) -> go.Figure:
    """The page's look on any figure (the report's own figures too, without changing them
    there): Bootstrap's font, a white template, tight margins, and percent ticks on the
    accuracy axis when it has one."""
    layout = {"margin": {"t": 36, "l": 56, "r": 12, "b": 44}, **layout}
    figure.update_layout(template="plotly_white", font=FONT, title_font_size=13, **layout)
    if accuracy_axis:
        figure.update_yaxes(**ACCURACY_AXIS)
    return figure


def pareto_plot(groups: list[Group], front: pd.DataFrame,
                dominated: Density | None = None) -> go.Figure:
    """Accuracy vs Mult-Adds (log x): one WebGL trace per colour group, the front on top, over
    the density of the dominated trials when there is one."""
    figure = go.Figure()
    scatter, marker = go.Scattergl, {"size": 7, "opacity": 0.75}
    if dominated is not None:  # the front's markers, to stand out from the density
        figure.add_trace(density_trace(dominated, "dominated trials"))
        marker = {"size": 9, "line": {"width": 1, "color": "white"}}
        if sum(len(group.points) for group in groups) <= WEBGL_ABOVE:
            scatter = go.Scatter
    for group in groups:
        figure.add_trace(scatter(
            x=(group.points["madds"] / 1e6).round(4).to_numpy(),
            y=group.points["val_accuracy"].round(5).to_numpy(),
            customdata=_customdata(group.points), mode="markers", name=group.label,
            meta="trials", hovertemplate=HOVER, marker=marker))
    if len(front):
        figure.add_trace(go.Scatter(
            x=front["madds"] / 1e6, y=front["val_accuracy"], mode="lines", name="Pareto front",
            meta="front", hoverinfo="skip", line={"color": "#212529", "width": 2,
                                                  "shape": "hv"}))
    return styled(figure, accuracy_axis=True,
                  xaxis={"title": X_TITLES["madds"], "type": "log", "tickvals": MADDS_TICKS,
                         "tickformat": "~g"}, hovermode="closest",
                  clickmode="event", uirevision="pareto",
                  legend={"itemsizing": "constant", "title": {"text": ""}},
                  margin={"t": 12, "l": 60, "r": 12, "b": 48})


def empty_plot(message: str) -> go.Figure:
    """An empty figure that says why it is empty (no study, no completed trials…)."""
    figure = go.Figure()
    figure.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper",
                          yref="paper", font={"size": 15, "color": "#6c757d"})
    return styled(figure, xaxis={"visible": False}, yaxis={"visible": False})


def hypervolume_plot(frame: pd.DataFrame) -> go.Figure:
    """Hypervolume by trial and by compute time, one line per study (each with its own
    reference point: see `mnsearch.results.frames`)."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=("over trials",
                                                           "over training time"),
                           horizontal_spacing=0.08)
    palette = qualitative.Plotly
    for index, line in enumerate(hypervolume_lines(frame)):
        style = {"shape": "hv", "color": palette[index % len(palette)]}
        figure.add_scatter(x=line.number, y=line.hypervolume, mode="lines", line=style,
                           name=line.label, legendgroup=line.label, row=1, col=1)
        figure.add_scatter(x=line.minutes, y=line.hypervolume, mode="lines", line=style,
                           name=line.label, legendgroup=line.label, showlegend=False,
                           row=1, col=2)
    figure.update_xaxes(title_text="trial number", row=1, col=1)
    figure.update_xaxes(title_text="training minutes (cumulative)", row=1, col=2)
    figure.update_yaxes(title_text="hypervolume", row=1, col=1)
    figure.update_annotations(font_size=13)
    return styled(figure, uirevision="hypervolume", height=300)
