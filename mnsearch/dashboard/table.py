"""The trial table: the trials that pass the filters, sorted and cut into pages on the server.

A 100,000-trial study is far more rows than a page can hold, so the browser only ever gets one
page: `table_page` sorts the filtered frame as the headers ask and returns that page's rows,
drawn as a plain Bootstrap table (`table_body`) under a pager. Dash's DataTable would do the
same with `page_action='custom'`, but it is deprecated in Dash 4 and adds a script bundle to
every cold load. Clicking a row opens its trial card, as clicking its point does.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import dash_bootstrap_components as dbc
import pandas as pd
from dash import dcc, html

from mnsearch.dashboard.cards import fact

PAGE_SIZE = 12
# column, header, format (`cards.fact` formats: Mult-Adds and params in millions)
COLUMNS = [("study", "study", "{}"), ("number", "#", "{}"), ("alpha", "α", "{:g}"),
           ("resolution", "px", "{:g}"), ("block_types", "blocks", "{}"),
           ("madds", "Mult-Adds (M)", "{:,.2f}"), ("params", "params (M)", "{:.3f}"),
           ("val_accuracy", "val accuracy", "{:.2%}"),
           ("test_accuracy", "test accuracy", "{:.2%}"), ("train_seconds", "train s", "{:.1f}")]
COLUMN_IDS = [column for column, _, _ in COLUMNS]
DEFAULT_SORT = {"column": "val_accuracy", "direction": "desc"}
DESCENDING_FIRST = ("val_accuracy", "test_accuracy")  # best first; costs cheapest first


class TablePage(NamedTuple):
    """One page of the sorted, filtered trials: its rows, its number (from 1) and the count."""

    rows: pd.DataFrame
    page: int
    pages: int
    first: int  # position of the first row among all (from 1; 0 when there is none)
    total: int


def table_page(points: pd.DataFrame, page: int | None, sort: dict | None,
               size: int = PAGE_SIZE) -> TablePage:
    """Page `page` (from 1, clamped to the pages there are) of `points` sorted by `sort`
    ({column, direction}; an unknown column sorts nothing). Missing values sort last and ties
    keep the frame's order (each study's trials by number)."""
    pages = max(math.ceil(len(points) / size), 1)
    page = min(max(int(page or 1), 1), pages)
    sort = sort or {}
    ordered = points
    if sort.get("column") in COLUMN_IDS and len(points):
        ordered = points.sort_values(sort["column"], ascending=sort.get("direction") != "desc",
                                     kind="stable", na_position="last")
    start = (page - 1) * size
    rows = ordered.iloc[start:start + size]
    return TablePage(rows, page, pages, start + 1 if len(rows) else 0, len(points))


def next_sort(current: dict | None, column: str) -> dict:
    """The sort after a click on `column`'s header: the other direction if it is already the
    sorted column, else that column, best or cheapest first."""
    current = current or DEFAULT_SORT
    if current.get("column") == column:
        return {"column": column, "direction": "asc" if current["direction"] == "desc"
                else "desc"}
    return {"column": column, "direction": "desc" if column in DESCENDING_FIRST else "asc"}


def header_labels(sort: dict | None) -> list[str]:
    """Each header's text, the sorted one with an arrow."""
    sort = sort or DEFAULT_SORT
    arrow = " ▼" if sort.get("direction") == "desc" else " ▲"
    return [name + (arrow if column == sort.get("column") else "")
            for column, name, _ in COLUMNS]


def table_body(rows: pd.DataFrame) -> list[html.Tr]:
    """The page's rows; each row's id names its trial, for the card."""
    return [html.Tr([html.Td(fact(row, column, template)) for column, _, template in COLUMNS],
                    id={"type": "trial-row", "study": str(row["study"]),
                        "number": int(row["number"])}, n_clicks=0, className="trial-row")
            for _, row in rows.iterrows()]


def page_summary(page: TablePage) -> str:
    if not page.total:
        return "no trial passes the filters"
    return f"trials {page.first:,}–{page.first + len(page.rows) - 1:,} of {page.total:,}"


def trial_table() -> html.Div:
    """The table, its pager and the sort it shows; callbacks fill the body."""
    headers = [html.Th(html.Button(label, id={"type": "sort-column", "column": column},
                                   className="sort-button", n_clicks=0))
               for (column, _, _), label in zip(COLUMNS, header_labels(DEFAULT_SORT),
                                                strict=True)]
    return html.Div([
        dbc.Table([html.Thead(html.Tr(headers)), html.Tbody(id="trials-body")],
                  id="trials-table", size="sm", hover=True, className="trials mb-2"),
        html.Div([dbc.Pagination(id="trials-pages", max_value=1, active_page=1,
                                 fully_expanded=False, previous_next=True, first_last=True,
                                 size="sm", class_name="mb-0"),
                  html.Span(id="trials-summary", className="small text-muted ms-3")],
                 className="d-flex align-items-center"),
        dcc.Store(id="table-sort", data=DEFAULT_SORT), dcc.Store(id="table-signature"),
    ])
