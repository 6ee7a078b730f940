"""Figures of one architecture or a few trials: cost breakdown by layer type, training curves.

Same pattern as `mnsearch.plots.study`: a pure function computes the data (tested), a thin one
draws it. The cost breakdown is the V1 paper's Table 2 (share of Mult-Adds and parameters by
layer type) as bars.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import pandas as pd
import plotly.graph_objects as go

from mnsearch.cost import cost_by_op, layer_table
from mnsearch.spec.arch import ArchSpec, spec_from_dict


class Curve(NamedTuple):
    """Validation accuracy per epoch of one trial."""

    label: str
    epochs: list[int]
    accuracy: list[float]


def trial_spec(spec: str | dict[str, Any] | None) -> ArchSpec | None:
    """The ArchSpec of a trial's `spec` (the JSON text of the frame or the stored dict)."""
    if spec is None or (isinstance(spec, float) and pd.isna(spec)):
        return None
    return spec_from_dict(json.loads(spec) if isinstance(spec, str) else spec)


def cost_breakdown(spec: ArchSpec) -> pd.DataFrame:
    """Mult-Adds and params by layer type with their shares (Table 2's rows), largest first."""
    table = cost_by_op(spec)
    table = table[(table["madds"] > 0) | (table["params"] > 0)]
    return table.sort_values("madds", ascending=False).reset_index(drop=True)


def cost_breakdown_figure(spec: ArchSpec, title: str | None = None) -> go.Figure:
    """Grouped bars: % of Mult-Adds and % of params per layer type."""
    table = cost_breakdown(spec)
    figure = go.Figure()
    figure.add_bar(x=table["type"], y=100 * table["madds_share"], name="Mult-Adds %",
                   customdata=table["madds"] / 1e6,
                   hovertemplate="%{x}: %{y:.2f}% (%{customdata:.2f} M Mult-Adds)<extra></extra>")
    figure.add_bar(x=table["type"], y=100 * table["params_share"], name="params %",
                   customdata=table["params"] / 1e6,
                   hovertemplate="%{x}: %{y:.2f}% (%{customdata:.3f} M params)<extra></extra>")
    figure.update_layout(title=title or "Cost by layer type", barmode="group",
                         yaxis_title="share (%)", template="plotly_white",
                         margin={"t": 40, "b": 40, "l": 50, "r": 10})
    return figure


def spec_layers(spec: ArchSpec) -> pd.DataFrame:
    """The per-layer table a trial card shows (layer, op, kernel, stride, shapes, costs)."""
    return layer_table(spec)[["layer", "op", "kernel", "stride", "input_shape", "output_shape",
                              "madds", "params"]]


def training_curves(trials: pd.DataFrame) -> list[Curve]:
    """One curve per trial that recorded its validation accuracy per epoch (`curve`)."""
    curves = []
    for row in trials.itertuples():
        values = row.curve if isinstance(row.curve, list) else []
        if values:
            curves.append(Curve(f"{row.study} #{row.number}", list(range(1, len(values) + 1)),
                                [float(value) for value in values]))
    return curves


def curves_figure(curves: list[Curve], title: str = "Training curve") -> go.Figure:
    """Validation accuracy against epoch, one line per curve."""
    figure = go.Figure()
    for curve in curves:
        figure.add_scatter(x=curve.epochs, y=curve.accuracy, name=curve.label,
                           mode="lines+markers")
    figure.update_layout(title=title, xaxis_title="epoch", yaxis_title="validation accuracy",
                         template="plotly_white", margin={"t": 40, "b": 40, "l": 50, "r": 10})
    return figure
