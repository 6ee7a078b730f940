"""What the page does: each callback is a plain function of its inputs (tested without a
browser), registered on the app by `register`. Filtering, the density of a large cloud and the
table's pages are all computed here, on the server: the browser gets what it draws.

Storage errors never reach the browser as tracebacks: they become one line in the page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import pandas as pd
import plotly.graph_objects as go
from dash import ALL, Dash, Input, Output, State, ctx, html, no_update
from dash.exceptions import PreventUpdate

from mnsearch.dashboard.cards import comparison, trial_card
from mnsearch.dashboard.data import (
    DashboardData,
    Filters,
    filter_options,
    find_trial,
    plot_points,
    state_counts,
)
from mnsearch.dashboard.fidelity import fidelity_panel
from mnsearch.dashboard.plots import (
    empty_plot,
    hypervolume_plot,
    pareto_groups,
    pareto_plot,
)
from mnsearch.dashboard.table import (
    COLUMN_IDS,
    TablePage,
    header_labels,
    next_sort,
    page_summary,
    table_body,
    table_page,
)
from mnsearch.errors import MnsearchError
from mnsearch.plots.aggregate import DENSITY_ABOVE

MAX_COMPARED = 4


def resolve_studies(search: str | None, defaults: list[str],
                    names: list[str]) -> tuple[list[str], str]:
    """The studies to show (from ?study=…, else --study, else the first one) and a message
    naming the available studies when a requested one does not exist."""
    requested = parse_qs((search or "").lstrip("?")).get("study") or defaults
    known = [name for name in requested if name in names]
    unknown = [name for name in requested if name not in names]
    if not names:
        return [], "This storage holds no study yet: run `mnsearch sweep` to create one."
    if unknown:
        return known, (f"No study {', '.join(repr(n) for n in unknown)} in this storage. "
                       f"Available studies: {', '.join(names)}.")
    return known or names[:1], ""


def main_view(data: DashboardData, studies: list[str], filters: Filters, color_by: str,
              density_above: int = DENSITY_ABOVE) -> tuple[go.Figure, str, go.Figure]:
    """Pareto plot, status line and hypervolume plot for the selected studies and filters;
    past `density_above` points the dominated trials are a density (see `pareto_groups`)."""
    if not studies:
        return empty_plot("Pick a study above."), "", empty_plot("")
    frame = data.frames(studies)
    points = data.points(studies, filters)
    evaluated = len(data.points(studies, Filters()))
    if evaluated == 0:
        message = (f"No completed trials yet in {', '.join(studies)} "
                   f"({state_counts(frame)}); this page refreshes by itself.")
        return empty_plot("No completed trials yet"), message, empty_plot("")
    groups, front, dominated = pareto_groups(points, color_by, density_above)
    status = (f"Showing {len(points):,} of {evaluated:,} evaluated trials "
              f"({state_counts(frame)}) · front {len(front)}")
    if dominated is not None:
        status += f" · {dominated.total:,} dominated as a density"
    hypervolume = data.derived("hypervolume", studies, lambda: hypervolume_plot(frame))
    return pareto_plot(groups, front, dominated), status, hypervolume


def warm(data: DashboardData, studies: list[str]) -> None:
    """Compute what the first page load draws for `studies` (their frames, evaluated trials,
    filter options, hypervolume lines), so that the page does not wait for it."""
    main_view(data, studies, Filters(), "alpha")
    frame = data.frames(studies)
    data.derived("options", studies, lambda: filter_options(frame))


def table_view(data: DashboardData, studies: list[str], filters: Filters, page: int | None,
               sort: dict | None) -> TablePage:
    """The trial table's page of the selected studies' filtered trials (see `table_page`)."""
    points = data.points(studies, filters) if studies else plot_points(pd.DataFrame(), filters)
    return table_page(points, page, sort)


def row_click(triggered: dict | None, clicks: int | None) -> dict | None:
    """A click on a table row as a plot click (`customdata` [study, number]); None when the
    callback fired only because a new page's rows appeared (their clicks are 0)."""
    if not isinstance(triggered, dict) or not clicks:
        return None
    return {"points": [{"customdata": [triggered["study"], triggered["number"]]}]}


def study_title(studies: list[str], simulated: set[str] | None = None) -> str:
    """The navbar's name for the selection: the study, or the first ones and how many more;
    SIMULATED when a selected study is (`mnsearch sweep --simulate`)."""
    title = " · ".join(studies) if len(studies) <= 2 else \
        f"{studies[0]} · {studies[1]} + {len(studies) - 2} more"
    if simulated and simulated & set(studies):
        title += " · SIMULATED"
    return title


def study_options(names: list[str], simulated: set[str]) -> list[dict[str, str]]:
    """The study picker's options, simulated studies labelled."""
    return [{"label": f"{name} (SIMULATED)" if name in simulated else name, "value": name}
            for name in names]


def read_filters(madds: float | None, accuracy: float | None, blocks: list | None,
                 alphas: list | None, resolutions: list | None) -> Filters:
    """Filters from the controls' values (empty inputs arrive as None).

    The accuracy box is labelled in percent, as the axes are; a value up to 1 is still read as
    a fraction (0.85), since nobody means "at least 0.85 %".
    """
    if accuracy is not None and accuracy > 1:
        accuracy = accuracy / 100
    return Filters(madds, accuracy, tuple(blocks or ()), tuple(alphas or ()),
                   tuple(resolutions or ()))


def card_view(data: DashboardData, click: dict | None) -> tuple[Any, list | None]:
    """The card of the clicked trial and its [study, number] (None when nothing is clicked)."""
    points = (click or {}).get("points") or []
    if not points or "customdata" not in points[0]:
        raise PreventUpdate
    study, number = points[0]["customdata"][:2]
    row = find_trial(data.frame(study), study, int(number))
    if row is None:
        return html.Div(f"Trial {number} of {study} is gone."), None
    return trial_card(row, data.label), [study, int(number)]


def next_comparison(current: list, selected: list | None, action: str) -> list:
    """Add the selected trial (at most MAX_COMPARED, oldest dropped) or clear the list."""
    if action == "clear":
        return []
    if not selected or selected in current:
        return current
    return (current + [selected])[-MAX_COMPARED:]


def register(app: Dash, data: DashboardData, density_above: int = DENSITY_ABOVE) -> None:
    """Attach every callback of the page to `app`."""

    @app.callback(Output("studies", "options"), Output("studies", "value"),
                  Output("message", "children"), Output("message", "is_open"),
                  Input("url", "search"), State("default-studies", "data"))
    def _pick(search: str | None, defaults: list[str]) -> tuple:
        try:
            names = data.names()
        except MnsearchError as error:
            return [], [], str(error), True
        selected, message = resolve_studies(search, defaults or [], names)
        return study_options(names, data.simulated()), selected, message, bool(message)

    @app.callback(Output("navbar-study", "children"), Input("studies", "value"))
    def _title(studies: list[str] | None) -> str:
        try:
            return study_title(studies or [], data.simulated())
        except MnsearchError:
            return study_title(studies or [])

    @app.callback(Output("filter-blocks", "options"), Output("filter-alpha", "options"),
                  Output("filter-resolution", "options"), Input("studies", "value"))
    def _options(studies: list[str] | None) -> tuple:
        try:
            frame = data.frames(studies or [])
            options = data.derived("options", studies or [], lambda: filter_options(frame))
        except MnsearchError:
            return [], [], []
        return (options["block_types"], options["alphas"],
                [{"label": f"{value} px", "value": value} for value in options["resolutions"]])

    @app.callback(Output("pareto-graph", "figure"), Output("status", "children"),
                  Output("hypervolume-graph", "figure"), Output("data-signature", "data"),
                  Input("studies", "value"), Input("filter-madds", "value"),
                  Input("filter-accuracy", "value"), Input("filter-blocks", "value"),
                  Input("filter-alpha", "value"), Input("filter-resolution", "value"),
                  Input("color-by", "value"), Input("refresh", "n_intervals"),
                  State("data-signature", "data"))
    def _main(studies, madds, accuracy, blocks, alphas, resolutions, color_by, _tick,
              signature) -> tuple:
        studies = studies or []
        try:
            if ctx.triggered_id == "refresh":
                data.frames(studies)  # refreshes the cache; redraw only if something changed
                if data.signature(studies) == signature:
                    raise PreventUpdate
            figures = main_view(data, studies, read_filters(madds, accuracy, blocks, alphas,
                                                            resolutions), color_by,
                                density_above)
        except MnsearchError as error:
            return empty_plot("storage unavailable"), str(error), empty_plot(""), no_update
        return (*figures, data.signature(studies))

    @app.callback(Output("fidelity", "children"), Input("studies", "value"),
                  Input("data-signature", "data"))
    def _fidelity(studies: list[str] | None, _signature: str | None) -> Any:
        try:
            return fidelity_panel(data, studies or [])
        except MnsearchError as error:
            return str(error)

    # The table follows the refresh itself rather than the plot's data signature: a callback
    # waiting for the plot's would start only once the plot is drawn.
    @app.callback(Output("trials-body", "children"), Output("trials-pages", "max_value"),
                  Output("trials-pages", "active_page"), Output("trials-summary", "children"),
                  Output("table-signature", "data"),
                  Input("studies", "value"), Input("filter-madds", "value"),
                  Input("filter-accuracy", "value"), Input("filter-blocks", "value"),
                  Input("filter-alpha", "value"), Input("filter-resolution", "value"),
                  Input("trials-pages", "active_page"), Input("table-sort", "data"),
                  Input("refresh", "n_intervals"), State("table-signature", "data"))
    def _table(studies, madds, accuracy, blocks, alphas, resolutions, page, sort, _tick,
               signature) -> tuple:
        studies = studies or []
        if ctx.triggered_id not in ("trials-pages", "refresh"):
            page = 1  # another selection, filter or order starts at its first page
        try:
            if ctx.triggered_id == "refresh":
                data.frames(studies)
                if data.signature(studies) == signature:
                    raise PreventUpdate
            shown = table_view(data, studies, read_filters(
                madds, accuracy, blocks, alphas, resolutions), page, sort)
        except MnsearchError as error:
            return [], 1, 1, str(error), no_update
        return (table_body(shown.rows), shown.pages, shown.page, page_summary(shown),
                data.signature(studies))

    @app.callback(Output("table-sort", "data"),
                  Output({"type": "sort-column", "column": ALL}, "children"),
                  Input({"type": "sort-column", "column": ALL}, "n_clicks"),
                  State("table-sort", "data"), prevent_initial_call=True)
    def _sort(_clicks, current) -> tuple:
        if not isinstance(ctx.triggered_id, dict) or not ctx.triggered[0]["value"]:
            raise PreventUpdate
        sort = next_sort(current, ctx.triggered_id["column"])
        labels = dict(zip(COLUMN_IDS, header_labels(sort), strict=True))
        return sort, [labels[output["id"]["column"]] for output in ctx.outputs_list[1]]

    @app.callback(Output("trial-card", "children"), Output("selected-trial", "data"),
                  Output("compare-add", "disabled"), Input("pareto-graph", "clickData"),
                  Input({"type": "trial-row", "study": ALL, "number": ALL}, "n_clicks"))
    def _card(click: dict | None, _rows: list) -> tuple:
        if ctx.triggered_id != "pareto-graph":
            click = row_click(ctx.triggered_id, ctx.triggered[0]["value"])
        try:
            card, selected = card_view(data, click)
        except MnsearchError as error:
            return str(error), None, True
        return card, selected, selected is None

    @app.callback(Output("compare-trials", "data"), Input("compare-add", "n_clicks"),
                  Input("compare-clear", "n_clicks"), State("selected-trial", "data"),
                  State("compare-trials", "data"), prevent_initial_call=True)
    def _compare(_add, _clear, selected, current) -> list:
        action = "clear" if ctx.triggered_id == "compare-clear" else "add"
        return next_comparison(current or [], selected, action)

    @app.callback(Output("comparison", "children"), Input("compare-trials", "data"))
    def _comparison(compared: list | None) -> Any:
        rows = []
        try:
            for study, number in compared or []:
                row = find_trial(data.frame(study), study, number)
                if row is not None:
                    rows.append(row)
        except MnsearchError as error:
            return str(error)
        return comparison(rows)
