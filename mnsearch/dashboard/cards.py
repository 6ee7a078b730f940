"""The trial card (spec, layer table, training curve, cost breakdown, export command) and the
side-by-side comparison of 2–4 trials, as Dash components built from frame rows."""

from __future__ import annotations

from numbers import Integral

import pandas as pd
from dash import dcc, html

from mnsearch.dashboard.data import export_command
from mnsearch.plots.trial import (
    cost_breakdown_figure,
    curves_figure,
    spec_layers,
    training_curves,
    trial_spec,
)

FACTS = [("state", "state", "{}"), ("α", "alpha", "{:g}"), ("resolution", "resolution", "{:g}"),
         ("ρ", "rho", "{:.3f}"), ("block types", "block_types", "{}"),
         ("Mult-Adds (M)", "madds", "{:,.2f}"), ("params (M)", "params", "{:.3f}"),
         ("latency (ms)", "latency_ms", "{:.3f}"), ("val accuracy", "val_accuracy", "{:.4f}"),
         ("test accuracy", "test_accuracy", "{:.4f}"), ("train s", "train_seconds", "{:.1f}")]
SCALE = {"madds": 1e6, "params": 1e6}
CELL = {"border": "1px solid #ddd", "padding": "2px 6px", "textAlign": "right"}


def fact(row: pd.Series, column: str, template: str) -> str:
    """One formatted value of a trial ('—' when it was not recorded)."""
    value = row.get(column)
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "—"
    return template.format(value / SCALE.get(column, 1) if column in SCALE else value)


def trial_card(row: pd.Series, storage_label: str) -> html.Div:
    """Everything about one trial; the figures are drawn from its spec and curve."""
    title = f"{row['study']} #{int(row['number'])}"
    facts = html.Table([html.Tr([html.Th(label, style=CELL), html.Td(
        fact(row, column, template), style=CELL)]) for label, column, template in FACTS],
        id="card-facts")
    command = export_command(str(row["study"]), storage_label, int(row["number"]))
    parts = [html.H3(title, id="card-title"), facts,
             html.P("Export this trial's model:"), html.Pre(command, id="card-export")]
    spec = trial_spec(row.get("spec"))
    if spec is not None:
        parts += [html.H4("Blocks"), html.Pre("\n".join(str(row["blocks"]).split()),
                                              id="card-blocks"),
                  dcc.Graph(figure=cost_breakdown_figure(spec), style={"height": "300px"},
                            config={"displaylogo": False}),
                  html.Details([html.Summary("Layer table"), _table(spec_layers(spec))])]
    curves = training_curves(pd.DataFrame([row]))
    if curves:
        parts.append(dcc.Graph(figure=curves_figure(curves), style={"height": "260px"},
                               config={"displaylogo": False}))
    return html.Div(parts, id="card-body")


def comparison(rows: list[pd.Series]) -> html.Div:
    """2–4 trials side by side: a row per fact, a column per trial, and their curves together."""
    if not rows:
        return html.Div("Click a trial, then “Add to comparison” (up to 4).",
                        className="note")
    header = html.Tr([html.Th("", style=CELL)] + [
        html.Th(f"{row['study']} #{int(row['number'])}", style=CELL) for row in rows])
    body = [html.Tr([html.Th(label, style=CELL)] + [
        html.Td(fact(row, column, template), style=CELL) for row in rows])
        for label, column, template in FACTS]
    blocks = html.Tr([html.Th("blocks", style=CELL)] + [
        html.Td(html.Pre("\n".join(str(row.get("blocks") or "").split()),
                         style={"fontSize": "11px", "margin": 0}), style=CELL) for row in rows])
    parts = [html.Table([header, *body, blocks], id="comparison-table")]
    curves = training_curves(pd.DataFrame(rows))
    if curves:
        parts.append(dcc.Graph(figure=curves_figure(curves, "Training curves"),
                               style={"height": "260px"}, config={"displaylogo": False}))
    return html.Div(parts)


def _table(frame: pd.DataFrame) -> html.Table:
    header = html.Tr([html.Th(column, style=CELL) for column in frame.columns])
    rows = [html.Tr([html.Td(f"{value:,}" if isinstance(value, Integral) else str(value),
                             style=CELL) for value in record])
            for record in frame.itertuples(index=False)]
    return html.Table([header, *rows], style={"fontSize": "12px"})
