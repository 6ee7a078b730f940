"""`mnsearch report`: one self-contained HTML file (plotly.js once, no external request)."""

import re
from pathlib import Path

import optuna
import plotly
import pytest

from mnsearch.cli.main import main
from mnsearch.plots.report import report_html, study_report
from mnsearch.results.frames import pareto_frame, trials_frame
from mnsearch.search.storage import open_storage
from mnsearch.testing.synthetic import synthetic_study


@pytest.fixture(scope="module")
def journal(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "studies.journal"
    storage = open_storage(str(path))
    synthetic_study(storage, "main", 25, seed=1, failed=1)
    synthetic_study(storage, "other", 10, seed=2)
    optuna.create_study(study_name="empty", storage=storage)
    return path


def _plotly_bundles(text: str) -> int:
    return text.count("plotly.js v")  # the banner at the top of the embedded bundle


def test_report_is_self_contained(journal, tmp_path):
    out = tmp_path / "report.html"
    assert main(["report", "--study", "main", "--storage", str(journal), "--out", str(out)]) == 0
    text = out.read_text()
    assert _plotly_bundles(text) == 1
    assert not re.search(r"<script[^>]+src=", text)  # nothing loaded from elsewhere
    assert not re.search(r"<link[^>]+href=", text)
    assert text.count('class="plotly-graph-div"') == 5  # front, Fig 4, Fig 5, HV, breakdown
    front = pareto_frame(trials_frame(optuna.load_study(study_name="main",
                                                        storage=open_storage(str(journal)))))
    assert f"Pareto front ({len(front)} trials)" in text
    for number in front["number"]:
        assert f"<td>{number}</td>" in text
    assert "hypervolume <b>" in text and "reference point (1, …, 1)" in text


def test_report_compares_studies_and_overlays_references(journal, tmp_path, capsys):
    references = tmp_path / "paper.csv"
    references.write_text("madds,accuracy,label\n569e6,0.706,V1 1.0-224\n")
    out = tmp_path / "both.html"
    assert main(["report", "--study", "main", "--study", "other", "--storage", str(journal),
                 "--reference", str(references), "--out", str(out)]) == 0
    assert f"report: {out}" in capsys.readouterr().out
    text = out.read_text()
    assert "Studies compared" in text and "other (front)" in text and "V1 1.0-224" in text
    assert _plotly_bundles(text) == 1


def test_report_of_a_study_without_completed_trials(journal, tmp_path):
    storage = open_storage(str(journal))
    study = optuna.load_study(study_name="empty", storage=storage)
    text = study_report([study])
    assert "No completed trials yet (no trials)" in text and _plotly_bundles(text) == 0


def test_report_html_is_pure():
    frame = trials_frame(synthetic_study(None, "pure", 6))
    text = report_html([frame], ("accuracy", "madds"), "subtitle <b>")
    assert text.startswith("<!DOCTYPE html>") and "subtitle &lt;b&gt;" in text


def test_report_errors_are_one_line(journal, tmp_path, capsys):
    assert main(["report", "--study", "nope", "--storage", str(journal),
                 "--out", str(tmp_path / "x.html")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "available: empty, main, other" in error
    assert main(["report", "--study", "main", "--storage", str(tmp_path / "absent.journal")]) == 2
    assert "no journal file" in capsys.readouterr().err
    (tmp_path / "bad.csv").write_text("madds\n1\n")
    assert main(["report", "--study", "main", "--storage", str(journal),
                 "--reference", str(tmp_path / "bad.csv")]) == 2
    assert "lack column" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()


def test_report_of_a_large_study_draws_densities():
    """Past the threshold (here 500 for 10,000) the clouds are densities, the front exact."""
    frame = trials_frame(synthetic_study(None, "large", 2000, seed=3))
    text = report_html([frame], ("accuracy", "madds"), density_above=500)
    small = report_html([frame], ("accuracy", "madds"))
    assert text.count('"meta":"density"') == 1 and '"meta":"density"' not in small
    assert "each line joins the median" in text and "each line joins the median" not in small
    # 2,000 points × 4 figures no longer embedded: the figures (all but plotly.js) shrink by
    # more than half (bytes vary with plotly's JSON engine: orjson writes them tighter)
    script = len((Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text())
    assert len(text) - script < 0.5 * (len(small) - script)
    front = pareto_frame(frame)
    assert f"Pareto front ({len(front)} trials)" in text
