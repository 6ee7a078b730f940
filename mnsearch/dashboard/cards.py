"""The trial card (spec, layer table, training curve, cost breakdown, export command) and the
side-by-side comparison of 2–4 trials, as Dash components built from frame rows.

The export command is `mnsearch.export`'s own (one definition of the command line, password
masked there), shown wrapped with a copy button: it is too long for one line of the panel.
"""

from __future__ import annotations

from numbers import Integral
from pathlib import Path

import dash_bootstrap_components as dbc
import pandas as pd
from dash import dcc, html

from mnsearch.dashboard.plots import styled
from mnsearch.export.export import ExportRequest, export_command
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
         ("latency (ms)", "latency_ms", "{:.3f}"), ("val accuracy", "val_accuracy", "{:.2%}"),
         ("test accuracy", "test_accuracy", "{:.2%}"), ("train s", "train_seconds", "{:.1f}")]
SCALE = {"madds": 1e6, "params": 1e6}
STATE_COLOURS = {"COMPLETE": "success", "RUNNING": "primary", "PRUNED": "warning",
                 "FAIL": "danger"}
GRAPH_CONFIG = {"displaylogo": False, "displayModeBar": False}
LEGEND_TOP_RIGHT = {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right",
                    "x": 1}  # on the title's line, above the bars


def fact(row: pd.Series, column: str, template: str) -> str:
    """One formatted value of a trial ('—' when it was not recorded)."""
    value = row.get(column)
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "—"
    return template.format(value / SCALE.get(column, 1) if column in SCALE else value)


def trial_card(row: pd.Series, storage_label: str) -> html.Div:
    """Everything about one trial; the figures are drawn from its spec and curve."""
    facts = dbc.Table([html.Tbody([html.Tr([html.Th(label), html.Td(fact(row, column, template))])
                                   for label, column, template in FACTS])],
                      id="card-facts", size="sm", striped=True, className="facts")
    parts = [_card_title(row), facts, _export(row, storage_label)]
    curves = training_curves(pd.DataFrame([row]))
    if curves:
        parts.append(_graph(styled(curves_figure(curves), accuracy_axis=True,
                                   xaxis={"dtick": 1}, showlegend=False), 220))
    spec = trial_spec(row.get("spec"))
    if spec is not None:
        blocks = str(row["blocks"]).split()
        parts += [_graph(styled(cost_breakdown_figure(spec), legend=LEGEND_TOP_RIGHT), 250),
                  html.Details([html.Summary(f"Blocks ({len(blocks)})"),
                                html.Pre("\n".join(blocks), id="card-blocks",
                                         className="blocks")]),
                  html.Details([html.Summary("Layer table"), _table(spec_layers(spec))])]
    return html.Div(parts, id="card-body")


def _card_title(row: pd.Series) -> html.Div:
    """Study and number, with the trial's state as a badge."""
    state = str(row.get("state") or "?")
    return html.Div([html.H5(f"{row['study']} #{int(row['number'])}", id="card-title",
                             className="mb-0"),
                     dbc.Badge(state.lower(), color=STATE_COLOURS.get(state, "secondary"))],
                    className="d-flex align-items-center gap-2 mb-2")


def _export(row: pd.Series, storage_label: str) -> html.Div:
    """The export command (wrapped, with a copy button), and what to substitute in it."""
    number = int(row["number"])
    request = ExportRequest(str(row["study"]), Path(f"export-trial-{number}"), storage_label)
    note = [html.Div("Replace *** with the storage password.", className="small text-muted")] \
        if "***" in storage_label else []
    return html.Div([
        html.Div("Export this trial's model", className="section-label"),
        html.Div([html.Pre(command_words(export_command(request, number)), id="card-export",
                           className="command"),
                  dcc.Clipboard(target_id="card-export", id="card-export-copy",
                                title="Copy the command", className="copy")],
                 className="command-box"),
        *note], className="mb-2")


def command_words(command: str) -> list:
    """The command as `--flag value` spans that do not break inside (a longer one may), with
    spaces between: it wraps between options, never after a `--`, and its text (what the copy
    button copies) is the command unchanged."""
    words = command.split(" --")
    words = words[:1] + [f"--{word}" for word in words[1:]]
    spans = [html.Span(word, className="word") if len(word) <= 40 else word for word in words]
    return [part for index, span in enumerate(spans)
            for part in ((" ", span) if index else (span,))]


def comparison(rows: list[pd.Series]) -> html.Div:
    """2–4 trials side by side: a row per fact, a column per trial, and their curves together."""
    if not rows:
        return html.Div("Click a trial in the plot, then “Add to comparison” (up to 4).",
                        className="placeholder-note")
    header = html.Thead(html.Tr([html.Th("")] + [
        html.Th(f"{row['study']} #{int(row['number'])}") for row in rows]))
    body = [html.Tr([html.Th(label)] + [html.Td(fact(row, column, template)) for row in rows])
            for label, column, template in FACTS]
    blocks = html.Tr([html.Th("blocks")] + [
        html.Td(html.Pre("\n".join(str(row.get("blocks") or "").split()), className="blocks"))
        for row in rows])
    table = dbc.Table([header, html.Tbody([*body, blocks])], id="comparison-table", size="sm",
                      bordered=True, hover=True, responsive=True, className="facts mb-0")
    curves = training_curves(pd.DataFrame(rows))
    if not curves:
        return html.Div(table)
    graph = _graph(styled(curves_figure(curves, "Training curves"), accuracy_axis=True,
                          xaxis={"dtick": 1}, legend={"orientation": "h", "y": -0.2}), 320)
    return dbc.Row([dbc.Col(table, lg=7), dbc.Col(graph, lg=5)], className="g-3")


def _graph(figure: object, height: int) -> dcc.Graph:
    return dcc.Graph(figure=figure, style={"height": f"{height}px"}, config=GRAPH_CONFIG)


def _table(frame: pd.DataFrame) -> dbc.Table:
    header = html.Thead(html.Tr([html.Th(column) for column in frame.columns]))
    rows = [html.Tr([html.Td(f"{value:,}" if isinstance(value, Integral) else str(value))
                     for value in record])
            for record in frame.itertuples(index=False)]
    return dbc.Table([header, html.Tbody(rows)], size="sm", striped=True, responsive=True,
                     className="layers")
