"""The data behind every figure (pure functions), and that each figure draws that data."""

import pandas as pd
import pytest

from mnsearch.plots.study import (
    ReferenceFileError,
    accuracy_lines,
    accuracy_vs_madds,
    accuracy_vs_params,
    add_overlays,
    hypervolume_figure,
    pareto_cloud,
    pareto_figure,
    read_reference_points,
    reference_overlay,
    study_overlay,
)
from mnsearch.plots.trial import (
    cost_breakdown,
    cost_breakdown_figure,
    curves_figure,
    spec_layers,
    training_curves,
    trial_spec,
)
from mnsearch.results.frames import hypervolume_history, pareto_frame, trials_frame
from mnsearch.spec.families import preset
from mnsearch.testing.synthetic import synthetic_study


@pytest.fixture(scope="module")
def frame():
    return trials_frame(synthetic_study(None, "figures", 60, seed=5, failed=2))


def test_figure_5_lines_use_params(frame):
    by_alpha, by_resolution, front = accuracy_lines(frame, "params")
    evaluated = frame[frame["state"] == "COMPLETE"]
    assert sum(len(line.x) for line in by_alpha) == len(evaluated)
    assert all(line.x == sorted(line.x) for line in by_alpha + by_resolution)
    expected = pareto_frame(frame, ("accuracy", "params"))
    assert sorted(front.x) == sorted(expected["params"] / 1e6)
    figure = accuracy_vs_params(frame)
    assert figure.layout.xaxis.type == "log" and "parameters" in figure.layout.xaxis.title.text


def test_pareto_cloud_partitions_the_evaluated_trials(frame):
    cloud = pareto_cloud(frame)
    evaluated = frame[frame["state"] == "COMPLETE"]
    assert len(cloud.front) + len(cloud.dominated) == len(evaluated)
    assert set(cloud.front["number"]) == set(pareto_frame(frame)["number"])
    assert not set(cloud.front.index) & set(cloud.dominated.index)
    figure = pareto_figure(frame)
    assert [trace.name for trace in figure.data] == ["dominated", "Pareto front"]
    assert len(figure.data[0].x) == len(cloud.dominated)


def test_hypervolume_figure_draws_the_history(frame):
    history = hypervolume_history(frame)
    figure = hypervolume_figure(history)
    assert list(figure.data[0].y) == list(history["hypervolume"])
    assert list(figure.data[1].x) == pytest.approx(list(history["compute_seconds"] / 60))


def test_cost_breakdown_is_v1_table_2():
    table = cost_breakdown(preset("v1"))
    shares = table.set_index("type")
    # V1 Table 2: 1x1 convolutions hold 94.86% of the Mult-Adds and 74.59% of the weights.
    assert shares.loc["pointwise 1x1", "madds_share"] == pytest.approx(0.9486, abs=5e-5)
    assert shares.loc["pointwise 1x1", "weights_share"] == pytest.approx(0.7459, abs=5e-5)
    assert table["madds_share"].sum() == pytest.approx(1.0)
    assert list(table["madds"]) == sorted(table["madds"], reverse=True)
    figure = cost_breakdown_figure(preset("v1"))
    assert list(figure.data[0].y) == pytest.approx(list(100 * table["madds_share"]))


def test_trial_spec_layers_and_curves(frame):
    row = frame.iloc[0]
    spec = trial_spec(row["spec"])
    assert spec.resolution == row["resolution"]
    layers = spec_layers(spec)
    assert layers["madds"].sum() == row["madds"] and layers["params"].sum() == row["params"]
    assert trial_spec(None) is None
    curves = training_curves(frame.iloc[:3])
    assert [curve.label for curve in curves] == [f"figures #{n}" for n in range(3)]
    assert curves[0].epochs == [1, 2, 3] and curves[0].accuracy == list(row["curve"])
    assert len(curves_figure(curves).data) == 3


def test_reference_points_overlay(tmp_path, frame):
    path = tmp_path / "v1_paper.csv"
    path.write_text("madds,accuracy,label\n569e6,0.706,1.0-224\n41e6,0.506,0.25-224\n")
    overlay = read_reference_points(path)
    assert overlay.label == "v1_paper" and overlay.x == [569.0, 41.0]
    assert overlay.text == ["1.0-224", "0.25-224"]
    figure = accuracy_vs_madds(frame, overlays=[overlay])
    assert figure.data[-1].name == "v1_paper" and list(figure.data[-1].y) == [0.706, 0.506]
    assert len(add_overlays(pareto_figure(frame), [overlay]).data) == 3


def test_reference_points_by_parameters_draw_where_their_cost_is_known(tmp_path, frame):
    """Published Fashion-MNIST points give parameters, rarely Mult-Adds: a row with one cost
    is drawn on that cost's figure only."""
    path = tmp_path / "fashion.csv"
    path.write_text("accuracy,params,madds,label\n0.925,98e3,,2-conv CNN\n"
                    "0.9551,0.27e6,41e6,ResNet-preact-20\n")
    overlay = read_reference_points(path)
    assert overlay.params == [0.098, 0.27] and overlay.x[1] == 41.0
    by_params = accuracy_vs_params(frame, overlays=[overlay]).data[-1]
    assert list(by_params.x) == [0.098, 0.27] and list(by_params.y) == [0.925, 0.9551]
    by_madds = accuracy_vs_madds(frame, overlays=[overlay]).data[-1]
    assert list(by_madds.x) == [41.0] and list(by_madds.text) == ["ResNet-preact-20"]
    only_madds = reference_overlay(pd.DataFrame({"madds": [1e6], "accuracy": [0.5]}), "m")
    assert accuracy_vs_params(frame, overlays=[only_madds]).data[-1].name != "m"


@pytest.mark.parametrize("text, match", [
    ("madds,label\n1e6,a\n", "lack column"),
    ("accuracy,label\n0.5,a\n", "lack column"),
    ("accuracy,params\n0.5,4.2\n", "params look like millions"),
    ("accuracy,params,madds\n0.5,,\n", "every row needs"),
    ("madds,accuracy\n569,0.7\n", "millions"),
    ("madds,accuracy\n569e6,70.6\n", "fraction"),
    ("madds,accuracy\n569e6,high\n", "positive numbers"),
])
def test_reference_points_refuse_bad_tables(tmp_path, text, match):
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(ReferenceFileError, match=match):
        read_reference_points(tmp_path / "bad.csv")
    with pytest.raises(ReferenceFileError, match="cannot read"):
        read_reference_points(tmp_path / "missing.csv")


def test_other_study_overlay_is_its_front(frame):
    other = trials_frame(synthetic_study(None, "other", 20, seed=9))
    overlay = study_overlay(other)
    assert overlay.label == "other (front)"
    assert overlay.x == list(pareto_frame(other)["madds"] / 1e6)
    assert reference_overlay(pd.DataFrame({"madds": [1e6], "accuracy": [0.5]}), "x").text == [""]


def _grid_with_stopped_trials():
    """A 2 α × 2 resolution grid in which the rung rule stopped the two α=0.5 models."""
    rows = []
    for number, (alpha, resolution, accuracy, state) in enumerate([
            (1.0, 28, 0.90, "COMPLETE"), (1.0, 20, 0.88, "COMPLETE"),
            (0.5, 28, 0.70, "PRUNED"), (0.5, 20, 0.65, "PRUNED")]):
        madds = alpha * resolution * 1e6
        rows.append({"study": "s", "number": number, "state": state, "alpha": alpha,
                     "resolution": resolution, "madds": madds, "params": alpha * 1e6,
                     "val_accuracy": accuracy if state == "COMPLETE" else None,
                     "curve": [accuracy - 0.1, accuracy], "rejected": None,
                     "duplicate_of": None, "block_types": "ds", "train_seconds": 1.0})
    rows.append({**rows[-1], "number": 4, "rejected": "madds > max_madds", "curve": None})
    return pd.DataFrame(rows)


def test_stopped_trials_are_in_every_figure_at_their_last_rung():
    frame = _grid_with_stopped_trials()
    by_alpha, by_resolution, front = accuracy_lines(frame)
    half = next(line for line in by_alpha if line.label == "α 0.5")
    assert half.stopped == [True, True] and half.accuracy == [0.65, 0.70]
    assert sum(len(line.x) for line in by_alpha) == 4  # every trained model, not the rejected
    assert all(len(line.x) == 2 for line in by_resolution)
    assert front.x == [20.0, 28.0]  # the front holds complete trials only
    figure = accuracy_vs_madds(frame)
    drawn = {trace.name: trace for trace in figure.data}
    assert list(drawn["α 0.5"].marker.symbol) == ["circle-open", "circle-open"]
    assert "stopped early (last rung)" in drawn
    pareto = {trace.name: trace for trace in pareto_figure(frame).data}
    assert list(pareto["stopped early (last rung)"].y) == [0.70, 0.65]
