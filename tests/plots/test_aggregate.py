"""Figures at scale: densities count every dominated point once, fronts stay exact, lines go
through binned medians; a low threshold stands for the 10,000 points of the real one."""

import numpy as np
import pandas as pd
import pytest
from optuna.trial import TrialState, create_trial

from mnsearch.plots.aggregate import binned_medians, density, log_edges
from mnsearch.plots.study import (
    accuracy_lines,
    accuracy_vs_madds,
    hypervolume_figure,
    hypervolume_steps,
    pareto_cloud,
    pareto_figure,
)
from mnsearch.results.frames import hypervolume_history, stopped_early, trials_frame
from mnsearch.testing.synthetic import synthetic_study

THRESHOLD = 50


@pytest.fixture(scope="module")
def frame():
    study = synthetic_study(None, "large", 400, seed=2, failed=3)
    for number in range(60):  # stopped early by the rung rule, with their last rung's accuracy
        study.add_trial(create_trial(state=TrialState.PRUNED, user_attrs={
            "madds": 10_000_000 + 100_000 * number, "alpha": 0.5, "resolution": 128,
            "curve": [0.4 + number / 1000]}))
    return trials_frame(study)


def test_density_counts_every_point_once():
    rng = np.random.default_rng(0)
    x, y = np.exp(rng.uniform(0, 8, 5000)), rng.uniform(0.5, 0.9, 5000)
    cloud = density(x, y, bins=(30, 20))
    assert cloud.counts.shape == (20, 30) and cloud.total == 5000  # the extremes included
    inside = (x >= cloud.x_edges[3]) & (x < cloud.x_edges[4]) & (y >= cloud.y_edges[5]) \
        & (y < cloud.y_edges[6])
    assert cloud.counts[5, 3] == inside.sum()
    assert np.allclose(np.diff(np.log(cloud.x_edges)), np.log(cloud.x_edges[1] /
                                                              cloud.x_edges[0]))
    assert density([3.0, 3.0], [0.5, 0.5]).total == 2  # one value: still a cell around it
    assert density([], []).total == 0


def test_pareto_figure_at_scale_keeps_the_front_exact(frame):
    cloud = pareto_cloud(frame)
    figure = pareto_figure(frame, density_above=THRESHOLD)
    traces = {trace.name: trace for trace in figure.data}
    dominated, stopped = traces["dominated"], traces["stopped early (last rung)"]
    assert dominated.type == "heatmap" and dominated.meta == "density"
    assert np.asarray(dominated.customdata).sum() == len(cloud.dominated)
    assert np.asarray(stopped.customdata).sum() == len(stopped_early(frame))
    assert stopped.visible == "legendonly"  # it would cover the dominated density
    front = traces["Pareto front"]
    assert list(front.x) == list(cloud.front["madds"] / 1e6)
    assert list(front.y) == list(cloud.front["val_accuracy"])
    small = pareto_figure(frame)  # below the threshold: every point, as before
    assert [trace.type for trace in small.data] == ["scatter", "scatter", "scatter"]


def test_figure_4_lines_at_scale_are_binned_medians(frame):
    exact = accuracy_lines(frame)
    binned = accuracy_lines(frame, bin_above=THRESHOLD)
    assert binned[2] == exact[2]  # the front is exact
    for line, full in zip(binned[0] + binned[1], exact[0] + exact[1], strict=True):
        assert line.label == full.label and line.x == sorted(line.x)
        assert sum(line.trials) == len(full.x) and len(line.x) <= len(full.x)
        assert min(full.accuracy) <= min(line.accuracy) <= max(line.accuracy) \
            <= max(full.accuracy)
    figure = accuracy_vs_madds(frame, bin_above=THRESHOLD)
    assert "median" in figure.layout.title.text
    assert figure.data[0].text[0].startswith("median of ")


def test_binned_medians():
    edges = log_edges(np.array([1.0, 100.0]), 2)  # [1, 10) and [10, 100]
    bins = binned_medians(pd.Series([1.0, 2.0, 3.0, 50.0, 100.0]),
                          pd.Series([0.1, 0.2, 0.6, 0.5, 0.7]),
                          pd.Series([True, True, False, False, False]), edges)
    assert list(bins["x"]) == [2.0, 75.0] and list(bins["accuracy"]) == [0.2, 0.6]
    assert list(bins["trials"]) == [3, 2] and list(bins["stopped"]) == [True, False]


def test_hypervolume_figure_at_scale_draws_the_steps(frame):
    history = hypervolume_history(frame)
    figure = hypervolume_figure(history, steps_above=THRESHOLD)
    steps = hypervolume_steps(history)
    assert len(figure.data[0].x) == len(steps) < len(history)
    assert figure.data[0].y[-1] == history["hypervolume"].iloc[-1]
    assert len(hypervolume_figure(history).data[0].x) == len(history)
