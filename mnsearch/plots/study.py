"""Study-level plotly figures; each is computed by a pure function (tested) and drawn by a thin one.

- `accuracy_vs_madds` / `accuracy_vs_params`: the V1 paper's Figures 4 and 5 — accuracy against
  Mult-Adds (or params) on a log axis, lines joining the same α across resolutions and the same
  resolution across α, with the Pareto front drawn over them.
- `pareto_figure`: the Pareto front over the cloud of dominated trials.
- At scale (above `mnsearch.plots.aggregate.DENSITY_ABOVE` points) the clouds become densities
  and the lines of Figures 4 and 5 go through binned medians; the fronts stay exact.
- `hypervolume_figure`: hypervolume over trials and over compute time; `hypervolume_lines`
  computes the same histories per study, cut to their steps (the dashboard draws them).
- Overlays (`Overlay`): other studies' fronts or reference points from a CSV, on any of these.
Per-architecture figures (cost breakdown, training curves) are in `mnsearch.plots.trial`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mnsearch.errors import MnsearchError
from mnsearch.plots.aggregate import (
    DENSITY_ABOVE,
    LINE_BINS,
    ORANGES,
    binned_medians,
    density,
    density_trace,
    log_edges,
)
from mnsearch.results.frames import completed, hypervolume_history, pareto_frame, stopped_early

WEBGL_ABOVE = 2000  # points; SVG markers slow down past a few thousand, WebGL does not
X_TITLES = {"madds": "Million Mult-Adds (log scale)", "params": "Million parameters (log scale)"}


class Line(NamedTuple):
    """Points joined by a line: x in millions (Mult-Adds, or params for Figure 5)."""

    label: str
    x: list[float]
    accuracy: list[float]
    stopped: list[bool]  # stopped early by the rung rule: accuracy is its last rung's
    trials: list[int] | None = None  # at scale, the trials behind each (median) point


class Cloud(NamedTuple):
    """The Pareto figure's data: front and dominated points (x in millions)."""

    front: pd.DataFrame
    dominated: pd.DataFrame


class HypervolumeLine(NamedTuple):
    """One study's hypervolume history at the trials where it changes (and the last one)."""

    label: str
    number: list[int]
    minutes: list[float]  # cumulative training time
    hypervolume: list[float]


class Overlay(NamedTuple):
    """Extra points drawn over a figure: another study's front or published results.

    A point may lack one of its costs (NaN): papers often give parameters and no Mult-Adds;
    it is then drawn only on the figures of the cost it has."""

    label: str
    x: list[float]  # Mult-Adds in millions
    accuracy: list[float]
    text: list[str]
    params: list[float] | None = None  # parameters in millions (None: not known)


class ReferenceFileError(MnsearchError):
    """A reference-points CSV that cannot be read or lacks the madds/accuracy columns."""


def accuracy_lines(frame: pd.DataFrame, x: str = "madds", bin_above: int = DENSITY_ABOVE,
                   ) -> tuple[list[Line], list[Line], Line]:
    """Lines of equal α, lines of equal resolution, and the Pareto front (Figure 4/5 data).

    `x` is 'madds' (Figure 4) or 'params' (Figure 5); the front is of accuracy against `x`,
    over complete trials only. The lines also hold trials stopped early, at their last rung's
    accuracy (`Line.stopped`), so every model of a grid is drawn. Above `bin_above` points,
    each line goes through the medians of its trials in `LINE_BINS` log-spaced bins of x
    (`Line.trials` counts them); the front is always exact.
    """
    complete = completed(frame)
    points = pd.concat([complete.assign(stopped=False), stopped_early(frame).assign(stopped=True)])
    points = points.dropna(subset=["val_accuracy", x]) if len(points) else points
    edges = log_edges(points[x], LINE_BINS) if len(points) > bin_above else None

    def lines(key: str, name: str) -> list[Line]:
        result = []
        for value, group in points.groupby(key):
            ordered = group.sort_values(x)
            if len(ordered) > 1 and edges is not None:
                bins = binned_medians(ordered[x], ordered["val_accuracy"], ordered["stopped"],
                                      edges)
                result.append(Line(f"{name} {value:g}", list(bins["x"] / 1e6),
                                   list(bins["accuracy"]), list(bins["stopped"]),
                                   list(bins["trials"])))
            elif len(ordered) > 1:
                result.append(Line(f"{name} {value:g}", list(ordered[x] / 1e6),
                                   list(ordered["val_accuracy"]), list(ordered["stopped"])))
        return result

    if points.empty:
        return [], [], Line("Pareto front", [], [], [])
    front = pareto_frame(complete.dropna(subset=["val_accuracy", x]), ("accuracy", x)) \
        .sort_values(x)
    return (lines("alpha", "α"), lines("resolution", "resolution"),
            Line("Pareto front", list(front[x] / 1e6), list(front["val_accuracy"]),
                 [False] * len(front)))


def accuracy_vs_madds(frame: pd.DataFrame, title: str = "Accuracy vs Mult-Adds",
                      overlays: list[Overlay] | None = None,
                      bin_above: int = DENSITY_ABOVE) -> go.Figure:
    """The V1 paper's Figure 4 for a study (see `accuracy_lines`)."""
    return _paper_figure(frame, "madds", title, overlays or [], bin_above)


def accuracy_vs_params(frame: pd.DataFrame, title: str = "Accuracy vs parameters",
                       overlays: list[Overlay] | None = None,
                       bin_above: int = DENSITY_ABOVE) -> go.Figure:
    """The V1 paper's Figure 5: accuracy against params, same lines as Figure 4."""
    return _paper_figure(frame, "params", title, overlays or [], bin_above)


def _paper_figure(frame: pd.DataFrame, x: str, title: str, overlays: list[Overlay],
                  bin_above: int) -> go.Figure:
    by_alpha, by_resolution, front = accuracy_lines(frame, x, bin_above)
    figure = go.Figure()
    for line in by_alpha:
        figure.add_scatter(x=line.x, y=line.accuracy, name=line.label, mode="lines+markers",
                           marker={"symbol": _symbols(line.stopped), "size": 8},
                           text=_median_labels(line))
    for line in by_resolution:
        figure.add_scatter(x=line.x, y=line.accuracy, name=line.label, mode="lines",
                           line={"dash": "dot", "width": 1}, opacity=0.6,
                           text=_median_labels(line))
    if any(line.trials for line in by_alpha + by_resolution):
        title += (f"<br><sup>more than {bin_above:,} trials: each line joins the median "
                  "accuracy of its trials in bins of x; the front is exact</sup>")
    figure.add_scatter(x=front.x, y=front.accuracy, name=front.label, mode="lines+markers",
                       line={"color": "black", "width": 3}, marker={"size": 10,
                                                                     "symbol": "star"})
    if any(any(line.stopped) for line in by_alpha):
        _stopped_legend(figure)
    add_overlays(figure, overlays, x)
    figure.update_layout(title=title, xaxis_title=X_TITLES[x], xaxis_type="log",
                         yaxis_title="validation accuracy", template="plotly_white")
    return figure


def _median_labels(line: Line) -> list[str] | None:
    return [f"median of {count:,} trials" for count in line.trials] if line.trials else None


def _symbols(stopped: list[bool]) -> list[str]:
    return ["circle-open" if flag else "circle" for flag in stopped]


def _stopped_legend(figure: go.Figure) -> None:
    """A legend entry explaining open markers (the trace itself draws nothing)."""
    figure.add_scatter(x=[None], y=[None], mode="markers", name="stopped early (last rung)",
                       marker={"symbol": "circle-open", "size": 8, "color": "gray"})


def pareto_cloud(frame: pd.DataFrame, objectives: tuple[str, ...] = ("accuracy", "madds"),
                 ) -> Cloud:
    """Evaluated trials split into the front of `objectives` and the dominated rest."""
    points = completed(frame)
    points = points.dropna(subset=["val_accuracy", "madds"]) if len(points) else points
    front = pareto_frame(points, objectives) if len(points) else points
    return Cloud(front, points.drop(index=front.index))


def pareto_figure(frame: pd.DataFrame, objectives: tuple[str, ...] = ("accuracy", "madds"),
                  title: str = "Pareto front", overlays: list[Overlay] | None = None,
                  density_above: int = DENSITY_ABOVE) -> go.Figure:
    """The front (line and stars) over the dominated cloud, accuracy against Mult-Adds.

    A cloud of more than `density_above` points (dominated, or stopped early) is drawn as a
    density (`mnsearch.plots.aggregate`); the stopped trials' density, which would cover the
    other, starts hidden (click its legend entry). The front is always every point.
    """
    cloud = pareto_cloud(frame, objectives)
    figure = go.Figure()
    figure.add_trace(_cloud_trace(cloud.dominated, "dominated", density_above,
                                  {"color": "lightgray", "size": 6}))
    figure.add_scatter(x=cloud.front["madds"] / 1e6, y=cloud.front["val_accuracy"],
                       mode="lines+markers", name="Pareto front", text=_labels(cloud.front),
                       line={"color": "black", "width": 2, "shape": "hv"},
                       marker={"size": 10, "symbol": "star"})
    stopped = stopped_early(frame)
    if len(stopped):
        figure.add_trace(_cloud_trace(stopped, "stopped early (last rung)", density_above,
                                      {"color": "gray", "size": 7, "symbol": "circle-open"}))
    add_overlays(figure, overlays or [])
    figure.update_layout(title=title, xaxis_title=X_TITLES["madds"], xaxis_type="log",
                         yaxis_title="validation accuracy", template="plotly_white")
    return figure


def _cloud_trace(points: pd.DataFrame, name: str, density_above: int,
                 marker: dict) -> go.Scatter | go.Scattergl | go.Heatmap:
    """Markers for a few points (WebGL past `WEBGL_ABOVE`), a density past `density_above`."""
    if len(points) > density_above:
        hidden = {} if name == "dominated" else {"colorscale": ORANGES, "showscale": False,
                                                 "visible": "legendonly"}
        return density_trace(density(points["madds"] / 1e6, points["val_accuracy"]), name,
                             showlegend=True, **hidden)
    scatter = go.Scattergl if len(points) > WEBGL_ABOVE else go.Scatter
    return scatter(x=points["madds"] / 1e6, y=points["val_accuracy"], mode="markers",
                   name=name, text=_labels(points), marker=marker)


def _labels(points: pd.DataFrame) -> list[str]:
    return [f"trial {row.number} · α {row.alpha:g} · {row.resolution} px"
            if pd.notna(row.alpha) and pd.notna(row.resolution) else f"trial {row.number}"
            for row in points.itertuples()]


def hypervolume_figure(history: pd.DataFrame, title: str = "Hypervolume",
                       steps_above: int = DENSITY_ABOVE) -> go.Figure:
    """Hypervolume (see `results.frames.hypervolume_history`) by trial and by compute time;
    a history longer than `steps_above` is cut to its steps (the same line, see
    `hypervolume_steps`)."""
    if len(history) > steps_above:
        history = hypervolume_steps(history)
    figure = make_subplots(rows=1, cols=2, subplot_titles=("over trials",
                                                           "over compute time"))
    figure.add_scatter(x=history["number"], y=history["hypervolume"], mode="lines",
                       line={"shape": "hv"}, name="by trial", row=1, col=1)
    figure.add_scatter(x=history["compute_seconds"] / 60, y=history["hypervolume"],
                       mode="lines", line={"shape": "hv"}, name="by compute", row=1, col=2)
    figure.update_xaxes(title_text="trial number", row=1, col=1)
    figure.update_xaxes(title_text="training minutes (cumulative)", row=1, col=2)
    figure.update_yaxes(title_text="hypervolume", row=1, col=1)
    figure.update_layout(title=title, template="plotly_white", showlegend=False)
    return figure


def hypervolume_lines(frame: pd.DataFrame, objectives: tuple[str, ...] = ("accuracy", "madds"),
                      ) -> list[HypervolumeLine]:
    """One hypervolume step line per study of `frame`, each against its own reference point.

    Only the trials where the volume changes (and the last) are kept: the same step line with a
    few dozen points instead of one per trial, so a 10,000-trial study draws as fast as a small
    one (the dashboard redraws it on every refresh).
    """
    lines = []
    for name, group in frame.groupby("study", sort=True):
        history = hypervolume_steps(hypervolume_history(group, objectives))
        if history.empty:
            continue
        lines.append(HypervolumeLine(str(name), [int(n) for n in history["number"]],
                                     list(history["compute_seconds"] / 60),
                                     list(history["hypervolume"])))
    return lines


def hypervolume_steps(history: pd.DataFrame) -> pd.DataFrame:
    """The rows of a hypervolume history where the volume changes, and the last one: drawn as
    a step line ('hv'), the same line as every row's."""
    if history.empty:
        return history
    changed = history["hypervolume"].diff().ne(0)
    changed.iloc[-1] = True
    return history[changed]


def study_overlay(frame: pd.DataFrame, label: str | None = None) -> Overlay:
    """Another study's Pareto front, to draw over this one's figures."""
    front = pareto_frame(frame)
    name = label or ", ".join(sorted(set(frame["study"].dropna()))) or "other study"
    return Overlay(f"{name} (front)", list(front["madds"] / 1e6), list(front["val_accuracy"]),
                   [f"trial {number}" for number in front["number"]],
                   list(front["params"] / 1e6))


def read_reference_points(path: str | Path) -> Overlay:
    """Reference points from a CSV with columns accuracy, madds and/or params, and optionally
    label.

    `madds` are Mult-Adds (569e6 for MobileNet-224, not 569), `params` parameters (4.2e6, not
    4.2) and `accuracy` a fraction in [0, 1], the units of the study frames, so points from
    papers line up with trials. A row may leave one of the two costs empty (papers often give
    only parameters): it is drawn on the figures of the cost it has.
    """
    path = Path(path)
    try:
        table = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise ReferenceFileError(f"cannot read reference points {path}: {error}") from None
    return reference_overlay(table, path.stem)


def reference_overlay(table: pd.DataFrame, name: str) -> Overlay:
    """Check a reference-points table (see `read_reference_points`) and make it an overlay."""
    costs = [column for column in ("madds", "params") if column in table]
    if "accuracy" not in table or not costs:
        raise ReferenceFileError(f"reference points '{name}' lack column(s) "
                                 f"{sorted({'accuracy'} - set(table.columns)) or 'madds or params'}"
                                 "; expected accuracy, madds and/or params, and optionally label")
    accuracy = pd.to_numeric(table["accuracy"], errors="coerce")
    values = {column: _reference_costs(table, column, name) for column in costs}
    known = pd.concat([value.notna() for value in values.values()], axis=1).any(axis=1)
    if accuracy.isna().any() or (accuracy <= 0).any():
        raise ReferenceFileError(f"reference points '{name}': accuracy must be positive "
                                 "numbers on every row")
    if not known.all():
        raise ReferenceFileError(f"reference points '{name}': every row needs a madds or "
                                 "params")
    if accuracy.max() > 1:
        raise ReferenceFileError(f"reference points '{name}': accuracy must be a fraction in "
                                 "[0, 1] (divide percentages by 100)")
    labels = table["label"].astype(str) if "label" in table else pd.Series([""] * len(table))
    madds = values.get("madds", pd.Series([float("nan")] * len(table)))
    params = values.get("params")
    return Overlay(name, list(madds / 1e6), list(accuracy), list(labels),
                   list(params / 1e6) if params is not None else None)


def _reference_costs(table: pd.DataFrame, column: str, name: str) -> pd.Series:
    """One cost column of a reference table: positive numbers or empty, in units, not
    millions."""
    values = pd.to_numeric(table[column], errors="coerce")
    given = table[column].notna()
    if values[given].isna().any() or (values[given] <= 0).any():
        raise ReferenceFileError(f"reference points '{name}': {column} must be positive "
                                 "numbers (or empty, when the row has the other cost)")
    if values.max() < 1e4:
        raise ReferenceFileError(f"reference points '{name}': {column} look like millions; "
                                 f"write units ({'569e6' if column == 'madds' else '4.2e6'}, "
                                 f"not {'569' if column == 'madds' else '4.2'})")
    return values


def add_overlays(figure: go.Figure, overlays: list[Overlay], x: str = "madds") -> go.Figure:
    """Draw overlays as labelled diamond markers (thin: the data is in each `Overlay`), on
    an x axis of Mult-Adds or params (overlays without that cost are left out)."""
    for overlay in overlays:
        values = overlay.x if x == "madds" else overlay.params
        if values is None:
            continue
        drawn = [index for index, value in enumerate(values) if not math.isnan(value)]
        figure.add_scatter(x=[values[index] for index in drawn],
                           y=[overlay.accuracy[index] for index in drawn], name=overlay.label,
                           mode="markers+text", text=[overlay.text[index] for index in drawn],
                           textposition="top center", marker={"symbol": "diamond", "size": 9})
    return figure
