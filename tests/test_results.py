"""Results tables and the Figure-4 data, on a synthetic study (no training)."""

import optuna
import pandas as pd
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from mnsearch.figures import accuracy_lines, accuracy_vs_madds
from mnsearch.results import pareto_frame, trials_frame


def _study():
    study = optuna.create_study(directions=["maximize", "minimize"])
    grid = [(alpha, resolution) for alpha in (1.0, 0.5) for resolution in (28, 20)]
    for alpha, resolution in grid:
        madds = int(1e6 * alpha * alpha * resolution)
        accuracy = 0.8 + 0.05 * alpha + resolution / 1000
        study.add_trial(create_trial(
            params={"alpha": alpha}, distributions={"alpha": CategoricalDistribution([1.0, 0.5])},
            values=[accuracy, madds], user_attrs={"alpha": alpha, "resolution": resolution,
                                                  "madds": madds, "val_accuracy": accuracy}))
    study.add_trial(create_trial(state=TrialState.FAIL))
    return study


def test_trials_frame_and_pareto_front():
    frame = trials_frame(_study())
    assert len(frame) == 5 and set(frame["state"]) == {"COMPLETE", "FAIL"}
    assert frame.loc[frame["number"] == 0, "param_alpha"].item() == 1.0
    front = pareto_frame(frame)
    # Accuracy rises with madds here, so every complete trial is on the front.
    assert list(front["madds"]) == sorted(frame["madds"].dropna())
    assert isinstance(front, pd.DataFrame)


def test_figure_4_lines():
    by_alpha, by_resolution, front = accuracy_lines(trials_frame(_study()))
    assert [line.label for line in by_alpha] == ["α 0.5", "α 1"]
    assert [line.label for line in by_resolution] == ["resolution 20", "resolution 28"]
    assert all(len(line.madds) == 2 for line in by_alpha + by_resolution)
    assert len(front.madds) == 4
    figure = accuracy_vs_madds(trials_frame(_study()))
    assert figure.layout.xaxis.type == "log" and len(figure.data) == 5
