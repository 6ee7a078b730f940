"""The proxy-fidelity figure and report section, on the hand-worked example of
tests/results/test_fidelity.py."""

import importlib.util
from pathlib import Path

import pytest

from mnsearch.plots.fidelity import fidelity_figure, fidelity_links
from mnsearch.plots.report import report_html
from mnsearch.results.fidelity import fidelity

_spec = importlib.util.spec_from_file_location(
    "fidelity_example", Path(__file__).parents[1] / "results" / "test_fidelity.py")
example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(example)


def test_links_join_each_configuration_and_trace_both_fronts():
    links = fidelity_links(fidelity(example.PROXY, example.FINAL))
    # Madds 1..6 (millions here: the example's Mult-Adds are tiny, 1e-6 M each).
    assert links.x[:3] == [pytest.approx(1e-6), pytest.approx(1e-6), None]
    assert links.accuracy[:3] == [0.5, 0.6, None] and len(links.x) == 18
    assert links.proxy_front[1] == pytest.approx([0.5, 0.6, 0.7, 0.8, 0.9])
    assert links.final_front[1] == pytest.approx([0.6, 0.8, 0.9, 0.95])


def test_figure_marks_the_stopped_proxy_hollow():
    figure = fidelity_figure(fidelity(example.PROXY, example.FINAL))
    proxy = next(trace for trace in figure.data if trace.name == "proxy trials")
    assert list(proxy.marker.symbol) == ["circle"] * 5 + ["circle-open"]
    assert "stopped early" in proxy.text[-1]


def test_report_has_the_fidelity_section():
    proxy = example.PROXY.assign(study="toy")
    final = example.FINAL.assign(study="toy-final")
    text = report_html([final], ["accuracy", "madds"], fidelity_frames=(proxy, final))
    assert "Proxy fidelity: toy → toy-final" in text
    assert "0.600 [" in text and "final test" in text and "stopped early, on final front" in text
