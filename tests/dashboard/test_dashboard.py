"""`mnsearch dashboard`: the callbacks as plain functions, the bad-input paths, and one run in a
real browser (Debian's chromium driven by Playwright) on a small synthetic study."""

import logging
import shutil
import threading
import urllib.request
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from dash import dcc, html

from mnsearch.cli.main import build_parser, main
from mnsearch.dashboard.app import create_app, make_dashboard_server
from mnsearch.dashboard.callbacks import (
    card_view,
    main_view,
    next_comparison,
    read_filters,
    resolve_studies,
    row_click,
    study_title,
    table_view,
)
from mnsearch.dashboard.cards import trial_card
from mnsearch.dashboard.data import (
    DashboardData,
    Filters,
    filter_options,
    find_trial,
    plot_points,
)
from mnsearch.dashboard.fidelity import fidelity_panel
from mnsearch.dashboard.plots import pareto_groups
from mnsearch.dashboard.table import (
    COLUMN_IDS,
    PAGE_SIZE,
    header_labels,
    next_sort,
    page_summary,
    table_body,
)
from mnsearch.export.export import ExportRequest, export_command
from mnsearch.plots.study import hypervolume_lines
from mnsearch.results.frames import hypervolume_history, pareto_frame
from mnsearch.search.storage import StorageError, open_storage
from mnsearch.testing.synthetic import synthetic_final_study, synthetic_study

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).parents[1] / "artifacts"
COMPLETE = 40


@pytest.fixture(scope="module")
def journal(tmp_path_factory):
    path = tmp_path_factory.mktemp("dashboard") / "studies.journal"
    storage = open_storage(str(path))
    synthetic_study(storage, "demo", COMPLETE, seed=4, failed=2, running=1)
    other = synthetic_study(storage, "other", 8, seed=5)
    synthetic_final_study(storage, other)
    empty = optuna.create_study(study_name="empty", storage=storage,
                                directions=["maximize", "minimize"])
    empty.enqueue_trial({"alpha": 1.0})  # a waiting trial: still no completed one
    return path


@pytest.fixture(scope="module")
def data(journal):
    return DashboardData(str(journal))


# --- callbacks and data, without a browser ---

def test_resolve_studies_names_the_available_ones():
    names = ["a", "b"]
    assert resolve_studies("", [], names) == (["a"], "")
    assert resolve_studies("?study=b&study=a", [], names) == (["b", "a"], "")
    assert resolve_studies("", ["b"], names) == (["b"], "")
    selected, message = resolve_studies("?study=zz", [], names)
    assert selected == [] and "No study 'zz'" in message and "Available studies: a, b" in message
    assert "run `mnsearch sweep`" in resolve_studies("", ["a"], [])[1]


def test_filters_keep_exactly_the_matching_trials(data):
    frame = data.frame("demo")
    everything = plot_points(frame, Filters())
    assert len(everything) == COMPLETE
    threshold = float(everything["val_accuracy"].median())
    limit = float(everything["madds"].median()) / 1e6
    options = filter_options(frame)
    kept = plot_points(frame, Filters(max_madds_m=limit, min_accuracy=threshold,
                                      block_types=(options["block_types"][0],),
                                      alphas=tuple(options["alphas"][1:])))
    expected = everything[(everything["madds"] <= limit * 1e6)
                          & (everything["val_accuracy"] >= threshold)
                          & (everything["block_types"] == options["block_types"][0])
                          & everything["alpha"].isin(options["alphas"][1:])]
    assert list(kept.index) == list(expected.index)
    assert options["resolutions"] == sorted(options["resolutions"])


def test_colour_groups_cover_every_point(data):
    points = plot_points(data.frame("demo"), Filters())
    for color_by in ("alpha", "block_types", "resolution", "study"):
        groups, front, dominated = pareto_groups(points, color_by)
        assert sum(len(group.points) for group in groups) == len(points)
        assert 1 <= len(front) <= len(points) and dominated is None


def test_a_large_cloud_is_a_density_and_the_front_stays_exact(data):
    """Past the threshold only the front's trials are markers; every dominated trial is
    counted once in the density (a threshold of 10 stands for 10,000 here)."""
    points = plot_points(data.frame("demo"), Filters())
    front = pareto_frame(points)
    groups, _, dominated = pareto_groups(points, "alpha", density_above=10)
    assert sorted(pd.concat([group.points for group in groups])["number"]) == \
        sorted(front["number"])
    assert dominated.total == len(points) - len(front)
    figure, status, _ = main_view(data, ["demo"], Filters(), "alpha", density_above=10)
    (heatmap,) = [trace for trace in figure.data if trace.meta == "density"]
    assert np.asarray(heatmap.customdata).sum() == len(points) - len(front)
    exact = [trace for trace in figure.data if trace.meta == "trials"]
    plotted = {(row[0], row[1]) for trace in exact for row in trace.customdata}
    assert plotted == {("demo", number) for number in front["number"]}
    assert np.allclose(sorted(y for trace in exact for y in trace.y),
                       sorted(front["val_accuracy"].round(5)))
    assert f"· {len(points) - len(front)} dominated as a density" in status
    small, status, _ = main_view(data, ["demo"], Filters(), "alpha")
    assert not [trace for trace in small.data if trace.meta == "density"]
    assert "density" not in status


def test_table_pages_are_the_sorted_filtered_frame(data):
    filters = Filters(min_accuracy=0.5)
    points = plot_points(data.frame("demo"), filters)
    expected = points.sort_values("madds", ascending=False, kind="stable")
    shown = table_view(data, ["demo"], filters, 2, {"column": "madds", "direction": "desc"})
    pages = -(-len(points) // PAGE_SIZE)
    assert (shown.page, shown.pages, shown.total) == (2, pages, len(points))
    assert list(shown.rows["number"]) == list(expected["number"].iloc[PAGE_SIZE:2 * PAGE_SIZE])
    assert page_summary(shown) == f"trials {PAGE_SIZE + 1}–{2 * PAGE_SIZE} of {len(points)}"
    last = table_view(data, ["demo"], filters, 99, {"column": "madds", "direction": "desc"})
    assert last.page == pages and list(last.rows["number"]) == \
        list(expected["number"].iloc[(pages - 1) * PAGE_SIZE:])  # past the end: the last page
    unsorted = table_view(data, ["demo"], filters, 1, {"column": "nope"})
    assert list(unsorted.rows["number"]) == list(points["number"].iloc[:PAGE_SIZE])
    assert table_view(data, [], filters, 1, None).total == 0
    row = _text(table_body(shown.rows)[0])
    first = expected.iloc[PAGE_SIZE]
    assert row.startswith(f"demo{first['number']}") and f"{first['madds'] / 1e6:,.2f}" in row


def test_table_sort_and_row_clicks():
    assert next_sort(None, "madds") == {"column": "madds", "direction": "asc"}
    assert next_sort({"column": "madds", "direction": "asc"}, "madds")["direction"] == "desc"
    assert next_sort({"column": "madds", "direction": "asc"}, "val_accuracy") == \
        {"column": "val_accuracy", "direction": "desc"}  # accuracy: best first
    labels = header_labels({"column": "madds", "direction": "asc"})
    assert labels[COLUMN_IDS.index("madds")].endswith("▲") and sum("▲" in x for x in labels) == 1
    assert row_click({"type": "trial-row", "study": "demo", "number": 3}, 1) == \
        {"points": [{"customdata": ["demo", 3]}]}
    assert row_click({"type": "trial-row", "study": "demo", "number": 3}, 0) is None  # new page


def _find(component, component_id):
    """The component of a Dash tree with this id (None if absent)."""
    if getattr(component, "id", None) == component_id:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            found = _find(child, component_id)
            if found is not None:
                return found
    return None


def _text(component) -> str:
    """The text a component shows (what the browser's innerText would be, spans joined)."""
    if component is None or isinstance(component, str | int | float):
        return "" if component is None else str(component)
    children = getattr(component, "children", None)
    parts = children if isinstance(children, list | tuple) else [children]
    return "".join(_text(child) for child in parts)


def test_fidelity_panel_pairs_a_proxy_with_its_final_study(data):
    assert "Add the linked study to the selection: other → other-final" in _text(
        html.Div(fidelity_panel(data, ["other"])))
    assert "Select a sweep's study together" in _text(html.Div(fidelity_panel(data, ["demo"])))
    panel = html.Div(fidelity_panel(data, ["other", "other-final"]))
    text = _text(panel)
    assert "other → other-final" in text and "Kendall tau" in text and "final test" in text
    (graph,) = _graphs(panel)
    proxy = next(trace for trace in graph.figure.data if trace.name == "proxy trials")
    assert len(proxy.x) == 8  # every complete proxy trial was finalized


def test_card_and_comparison(data):
    click = {"points": [{"customdata": ["demo", 3, 1.0]}]}
    card, selected = card_view(data, click)
    assert selected == ["demo", 3]
    assert _text(_find(card, "card-title")) == "demo #3"
    compared = []
    for number in range(6):
        compared = next_comparison(compared, ["demo", number], "add")
    assert compared == [["demo", n] for n in range(2, 6)]
    assert next_comparison(compared, ["demo", 5], "add") == compared
    assert next_comparison(compared, None, "clear") == []


def test_card_export_command_is_the_export_one_with_a_copy_button(data):
    card, _ = card_view(data, {"points": [{"customdata": ["demo", 3]}]})
    expected = export_command(ExportRequest("demo", Path("export-trial-3"), data.label), 3)
    assert _text(_find(card, "card-export")) == expected  # wrapped for display, not changed
    assert expected.startswith("mnsearch export --study demo --storage ")
    copy = _find(card, "card-export-copy")
    assert isinstance(copy, dcc.Clipboard) and copy.target_id == "card-export"


def test_card_masks_the_storage_password(data):
    row = find_trial(data.frame("demo"), "demo", 3)
    label = DashboardData("postgresql://user:hunter2@db.example/sweeps").label
    card = trial_card(row, label)
    assert "hunter2" not in str(card) and "user:***@" in _text(_find(card, "card-export"))
    assert "Replace *** with the storage password" in _text(card)


def test_accuracy_axes_are_percent(data):
    figure, _, _ = main_view(data, ["demo"], Filters(), "alpha")
    assert figure.layout.yaxis.tickformat == ".0%"
    assert all("%{y:.2%}" in trace.hovertemplate for trace in figure.data
               if trace.meta == "trials")
    card, _ = card_view(data, {"points": [{"customdata": ["demo", 3]}]})
    curve = next(graph for graph in _graphs(card) if graph.figure.layout.title.text ==
                 "Training curve")
    assert curve.figure.layout.yaxis.tickformat == ".0%"
    assert _text(_find(card, "card-facts")).count("%") == 2  # val and test accuracy


def _graphs(component):
    if isinstance(component, dcc.Graph):
        yield component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            yield from _graphs(child)


def test_accuracy_filter_reads_percent_or_fraction():
    assert read_filters(None, 85, None, None, None).min_accuracy == pytest.approx(0.85)
    assert read_filters(None, 0.85, None, None, None).min_accuracy == pytest.approx(0.85)
    assert read_filters(None, None, None, None, None).min_accuracy is None


def test_navbar_names_the_selection():
    assert study_title([]) == "" and study_title(["a"]) == "a"
    assert study_title(["a", "b"]) == "a · b"
    assert study_title(["a", "b", "c", "d"]) == "a · b + 2 more"


def test_hypervolume_lines_keep_the_steps(data):
    frame = data.frames(["demo", "other"])
    lines = hypervolume_lines(frame)
    assert [line.label for line in lines] == ["demo", "other"]
    for line in lines:
        history = hypervolume_history(frame[frame["study"] == line.label])
        assert line.hypervolume[-1] == history["hypervolume"].iloc[-1]
        assert line.number[-1] == history["number"].iloc[-1]
        assert len(line.number) <= len(history)
        assert all(a != b for a, b in zip(line.hypervolume[:-2], line.hypervolume[1:-1],
                                          strict=True))  # one point per step


def test_unreachable_storage_is_one_line(tmp_path, capsys):
    url = "postgresql://user:hunter2@127.0.0.1:9/nowhere"
    assert main(["dashboard", "--storage", url]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "cannot open storage" in error
    assert "hunter2" not in error and "user:***@" in error
    absent = tmp_path / "absent.journal"
    assert main(["dashboard", "--storage", str(absent)]) == 2
    assert "no journal file" in capsys.readouterr().err and not absent.exists()
    with pytest.raises(StorageError):
        DashboardData(f"sqlite:///{tmp_path}/missing/dir/x.db").names()


def test_dashboard_binds_localhost_by_default():
    args = build_parser().parse_args(["dashboard"])
    assert (args.host, args.port, args.study, args.verbose) == ("127.0.0.1", 8050, [], False)
    assert build_parser().parse_args(["dashboard", "--verbose"]).verbose


@pytest.mark.parametrize("verbose", [False, True])
def test_request_lines_are_logged_only_when_verbose(data, caplog, verbose):
    """The page polls every 5 s: one werkzeug line per request would flood the terminal."""
    dashboard = make_dashboard_server(create_app(data, ["demo"]), "127.0.0.1", 0, verbose)
    thread = threading.Thread(target=dashboard.serve_forever, daemon=True)
    thread.start()
    try:
        with caplog.at_level(logging.INFO, logger="werkzeug"):
            urllib.request.urlopen(f"http://127.0.0.1:{dashboard.port}/_dash-layout",
                                   timeout=30).read()
    finally:
        dashboard.shutdown()
        thread.join(timeout=10)
    lines = [record.getMessage() for record in caplog.records if record.name == "werkzeug"]
    assert any("GET /_dash-layout" in line for line in lines) == verbose, lines


# --- in a real browser ---

@pytest.fixture(scope="module")
def server(data):
    dashboard = make_dashboard_server(create_app(data, ["demo"]), "127.0.0.1", 0)
    thread = threading.Thread(target=dashboard.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{dashboard.port}/"
    dashboard.shutdown()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


COUNT_POINTS = """() => {
  const graph = document.querySelector('#pareto-graph .js-plotly-plot');
  if (!graph || !graph._fullData) return -1;
  return graph._fullData.filter(t => t.meta === 'trials').reduce((n, t) => n + t.x.length, 0);
}"""
DRAWN_TRIALS = """() => {
  const graph = document.querySelector('#pareto-graph .js-plotly-plot');
  if (!graph || !graph._fullData) return -1;
  let cells = 0;  // customdata rows arrive as typed arrays (plotly's binary encoding)
  for (const t of graph._fullData.filter(t => t.meta === 'density'))
    for (const row of t.customdata) for (const count of row) cells += count;
  return cells + graph._fullData.filter(t => t.meta === 'trials')
                                .reduce((n, t) => n + t.x.length, 0);
}"""
FIRST_POINT = """() => {
  const graph = document.querySelector('#pareto-graph .js-plotly-plot');
  const trace = graph._fullData.find(t => t.meta === 'trials');
  const layout = graph._fullLayout, box = graph.getBoundingClientRect();
  const x = layout.xaxis._offset + layout.xaxis.c2p(trace.x[0]);
  const y = layout.yaxis._offset + layout.yaxis.c2p(trace.y[0]);
  return {x: box.left + x, y: box.top + y, trial: trace.customdata[0][1]};
}"""


def _wait_for_points(page, count: int) -> None:
    page.wait_for_function(f"() => ({COUNT_POINTS})() === {count}", timeout=20000)


BOXES = """() => Object.fromEntries(['pareto-graph', 'trial-card', 'comparison'].map(id => {
  const box = document.getElementById(id).getBoundingClientRect();
  return [id, [box.left, box.top, box.width, box.height]];
}))"""
Y_TICKS = ("() => [...document.querySelectorAll('#pareto-graph .ytick text')]"
           ".map(t => t.textContent)")


def test_browse_filter_click_compare(server, browser, data, tmp_path):
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.rstrip("/"))
    page = context.new_page()
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(server)
    _wait_for_points(page, COMPLETE)
    assert page.evaluate(COUNT_POINTS) == COMPLETE
    assert page.locator("#status").inner_text().startswith(f"Showing {COMPLETE} of {COMPLETE}")
    assert page.inner_text("#navbar-study") == "demo"
    navbar = page.evaluate("getComputedStyle(document.querySelector('.navbar')).backgroundColor")
    assert navbar == "rgb(33, 37, 41)"  # Bootstrap's bg-dark: its CSS came from the server
    ticks = page.evaluate(Y_TICKS)
    assert ticks and all(tick.endswith("%") for tick in ticks)
    closed = page.evaluate(BOXES)

    points = plot_points(data.frame("demo"), Filters())
    threshold = round(float(points["val_accuracy"].quantile(0.6)), 3)
    expected = int((points["val_accuracy"] >= threshold).sum())
    page.fill("#filter-accuracy", str(threshold))
    page.press("#filter-accuracy", "Enter")
    _wait_for_points(page, expected)
    assert page.locator("#status").inner_text().startswith(f"Showing {expected} of {COMPLETE}")

    target = page.evaluate(FIRST_POINT)
    page.mouse.move(target["x"], target["y"])
    page.mouse.click(target["x"], target["y"])
    page.wait_for_selector("#card-title", timeout=10000)
    assert page.inner_text("#card-title") == f"demo #{target['trial']}"
    assert f"--trial {target['trial']}" in page.inner_text("#card-export")
    assert page.locator("#card-facts").inner_text().count("\n") >= 10
    opened = page.evaluate(BOXES)
    assert opened == closed  # the card opens in its own panel: nothing else moves
    page.click("#card-export-copy")
    expected = export_command(ExportRequest("demo", Path(f"export-trial-{target['trial']}"),
                                            data.label), target["trial"])
    page.wait_for_function("(text) => navigator.clipboard.readText().then(t => t === text)",
                           arg=expected, timeout=5000)
    page.click("#compare-add")
    page.wait_for_selector("#comparison-table", timeout=10000)
    assert f"demo #{target['trial']}" in page.inner_text("#comparison-table")

    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / "dashboard.png")
    assert shot.stat().st_size > 10000
    assert requests and all(url.startswith(server) for url in requests)  # nothing external
    assert any("/assets/bootstrap.min.css" in url for url in requests)
    context.close()


FIRST_ROW = ("() => [...(document.querySelector('#trials-body tr')?.children || [])]"
             ".map(cell => cell.innerText)")


def _wait_for_summary(page, text: str) -> None:
    page.wait_for_function("(text) => (document.querySelector('#trials-summary')?.innerText "
                           "|| '') === text", arg=text, timeout=20000)


def test_browser_table_sorts_pages_and_opens_cards(server, browser, data):
    points = plot_points(data.frame("demo"), Filters())
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    page.goto(server)
    _wait_for_summary(page, f"trials 1–{PAGE_SIZE} of {COMPLETE}")
    best = points.sort_values("val_accuracy", ascending=False, kind="stable").iloc[0]
    assert page.evaluate(FIRST_ROW)[:2] == ["demo", str(best["number"])]
    page.click("#trials-table th:nth-child(6) button")  # Mult-Adds: cheapest first
    cheapest = points.sort_values("madds", kind="stable")
    page.wait_for_function(f"() => ({FIRST_ROW})()[1] === '{cheapest['number'].iloc[0]}'",
                           timeout=20000)
    assert page.inner_text("#trials-table th:nth-child(6)").endswith("▲")
    page.click("#trials-pages a.page-link:text-is('2')")
    _wait_for_summary(page, f"trials {PAGE_SIZE + 1}–{2 * PAGE_SIZE} of {COMPLETE}")
    number = str(cheapest["number"].iloc[PAGE_SIZE])
    assert page.evaluate(FIRST_ROW)[1] == number
    page.click("#trials-body tr:first-child td:nth-child(3)")
    page.wait_for_function(f"() => document.querySelector('#card-title')?.innerText === "
                           f"'demo #{number}'", timeout=20000)
    page.close()


def test_browser_draws_a_large_cloud_as_a_density(data, browser):
    """With a threshold of 10 points the 40-trial study takes the 100,000-trial path."""
    dashboard = make_dashboard_server(create_app(data, ["demo"], density_above=10),
                                      "127.0.0.1", 0)
    thread = threading.Thread(target=dashboard.serve_forever, daemon=True)
    thread.start()
    try:
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{dashboard.port}/")
        page.wait_for_function(f"() => ({DRAWN_TRIALS})() === {COMPLETE}", timeout=20000)
        front = len(pareto_frame(plot_points(data.frame("demo"), Filters())))
        assert page.evaluate(COUNT_POINTS) == front
        assert page.locator("#pareto-graph .heatmaplayer image").count() == 1
        page.close()
    finally:
        dashboard.shutdown()
        thread.join(timeout=10)


def test_browser_unknown_study_and_empty_state(server, browser):
    page = browser.new_page()
    page.goto(server + "?study=nope")
    page.wait_for_function("() => (document.querySelector('#message')?.innerText || '').length > 0")
    assert "Available studies: demo, empty, other" in page.inner_text("#message")
    page.goto(server + "?study=empty")
    page.wait_for_function(
        "() => (document.querySelector('#status')?.innerText || '').includes('No completed')")
    assert "No completed trials yet in empty" in page.inner_text("#status")
    page.close()


def test_dashboard_and_report_do_not_import_jax():
    import subprocess
    import sys
    code = ("import sys, mnsearch.dashboard, mnsearch.plots.report, mnsearch.cli.results, "
            "mnsearch.testing.synthetic; print('jax' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"
