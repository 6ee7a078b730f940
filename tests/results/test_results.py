"""Results tables, fronts, hypervolume and the Figure-4 data, on synthetic studies (no training)."""

import itertools

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from mnsearch.cli.sweep_display import write_sweep_results
from mnsearch.plots.study import accuracy_lines, accuracy_vs_madds
from mnsearch.results.frames import (
    PHASE_COLUMNS,
    compare_studies,
    hypervolume_history,
    pareto_frame,
    studies_frame,
    study_hypervolume,
    time_accounting,
    trained,
    trials_frame,
)
from mnsearch.search.storage import StudyNotFoundError, load_study
from mnsearch.testing.synthetic import synthetic_study


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
    assert all(len(line.x) == 2 for line in by_alpha + by_resolution)
    assert len(front.x) == 4
    figure = accuracy_vs_madds(trials_frame(_study()))
    assert figure.layout.xaxis.type == "log" and len(figure.data) == 5


# --- the results library: frames of several studies, fronts, hypervolume, comparisons ---



def _frame(rows):
    """A frame as trials_frame makes it, from (accuracy, madds, params) triples."""
    return pd.DataFrame([{"study": "s", "number": number, "state": "COMPLETE",
                          "duplicate_of": None, "rejected": None, "val_accuracy": accuracy,
                          "madds": madds,
                          "params": params, "train_seconds": 10.0}
                         for number, (accuracy, madds, params) in enumerate(rows)])


def _brute_force_front(frame, columns, signs):
    """Indices no other row dominates, by checking every pair."""
    values = frame[columns].to_numpy() * np.array(signs)  # as losses
    keep = []
    for i, j_values in enumerate(values):
        dominated = any(np.all(other <= j_values) and np.any(other < j_values)
                        for k, other in enumerate(values) if k != i)
        if not dominated:
            keep.append(frame.index[i])
    return sorted(keep)


@pytest.mark.parametrize("objectives", [("accuracy", "madds"), ("accuracy", "params"),
                                        ("accuracy", "madds", "params")])
def test_pareto_front_matches_brute_force(objectives):
    rng = np.random.default_rng(7)
    rows = list(zip(rng.choice([0.7, 0.8, 0.9], 60), rng.integers(1, 30, 60) * 1e6,
                    rng.integers(1, 30, 60) * 1e5, strict=True))  # ties on purpose
    frame = _frame(rows)
    columns = {"accuracy": "val_accuracy", "madds": "madds", "params": "params"}
    signs = [-1 if name == "accuracy" else 1 for name in objectives]
    expected = _brute_force_front(frame, [columns[name] for name in objectives], signs)
    assert sorted(pareto_frame(frame, objectives).index) == expected


def test_pareto_front_skips_unevaluated_and_missing_values():
    frame = _frame([(0.9, 5e6, 1e5), (0.95, 4e6, 1e5), (0.99, 1e6, 1e5)])
    frame.loc[1, "state"] = "FAIL"
    frame.loc[2, "duplicate_of"] = 0
    assert list(pareto_frame(frame)["number"]) == [0]
    frame["latency_ms"] = [None, None, None]
    assert pareto_frame(frame, ("accuracy", "latency")).empty


def test_hypervolume_known_values():
    # losses (1 - acc, madds / 100): (0.1, 0.5), (0.3, 0.25), (0.2, 1.0); the last touches the
    # reference point and adds nothing: 0.9 * 0.5 + 0.7 * 0.25 = 0.625.
    frame = _frame([(0.9, 50, 1), (0.7, 25, 1), (0.8, 100, 1)])
    assert study_hypervolume(frame) == pytest.approx(0.625)
    assert study_hypervolume(_frame([])) == 0.0


def test_hypervolume_reference_200():
    # Reference 200: losses (0.1, .25), (0.3, .125), (0.2, .5): the third is dominated by the
    # first. Volume: 0.9 * (1 - .25) + 0.7 * (.25 - .125) = 0.675 + 0.0875.
    frame = _frame([(0.9, 50, 1), (0.7, 25, 1), (0.8, 100, 1)])
    assert study_hypervolume(frame, references={"madds": 200}) == pytest.approx(0.7625)


def test_stopped_trials_set_the_cost_reference_and_rejected_ones_do_not():
    # Trial 2 (Mult-Adds 200) stopped early: its cost, known before training, is the reference.
    # Trial 3 was rejected by a constraint, never trained: its 400 must not count.
    frame = _frame([(0.9, 50, 1), (0.7, 25, 1), (0.6, 200, 1), (0.95, 400, 1)])
    frame.loc[[2, 3], "state"] = "PRUNED"
    frame.loc[3, "rejected"] = "madds 400 > max_madds 300"
    # losses (0.1, .25), (0.3, .125): 0.9 * (1 - .25) + 0.7 * (.25 - .125) = 0.7625.
    assert study_hypervolume(frame) == pytest.approx(0.7625)
    assert hypervolume_history(frame)["hypervolume"].iloc[-1] == pytest.approx(0.7625)


def test_hypervolume_history_is_the_volume_of_every_prefix():
    study = synthetic_study(None, "history", 40, seed=3, failed=3)
    frame = trials_frame(study)
    history = hypervolume_history(frame)
    references = {"madds": frame.loc[frame["state"] == "COMPLETE", "madds"].max()}
    for row in history.itertuples():
        prefix = frame[frame["number"] <= row.number]
        assert row.hypervolume == pytest.approx(study_hypervolume(prefix, references=references))
    assert np.all(np.diff(history["hypervolume"]) >= 0)
    spent = frame.set_index("number").sort_index()["train_seconds"].fillna(0).cumsum()
    assert np.allclose(history["compute_seconds"], spent.loc[history["number"]])
    assert hypervolume_history(frame.iloc[0:0]).empty


def test_trials_frame_records_what_sweeps_store():
    study = synthetic_study(None, "attrs", 5, failed=1, running=1)
    frame = trials_frame(study)
    assert list(frame["study"].unique()) == ["attrs"] and len(frame) == 7
    row = frame.iloc[0]
    assert row["madds"] > 0 and row["params"] > 0 and row["latency_ms"] > 0
    assert row["block_types"] in {"ds", "cn+ir"} and row["blocks"].split()[0][:2] in {"ds", "ir"}
    assert row["duration_s"] == pytest.approx(sum(row[column] for column in PHASE_COLUMNS))
    assert row["seconds_train"] == row["train_seconds"]
    assert row["seconds_other"] == pytest.approx(0.25)
    assert row["rho"] == pytest.approx(row["resolution"] / 224)  # resolution / largest
    assert set(frame["state"]) == {"COMPLETE", "FAIL", "RUNNING"}


def test_several_studies_and_their_comparison(tmp_path):
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "s.journal")))
    synthetic_study(storage, "a", 20, seed=1)
    synthetic_study(storage, "b", 10, seed=2, failed=2)
    frame = studies_frame(storage, ["a", "b"])
    assert frame.groupby("study").size().to_dict() == {"a": 20, "b": 12}
    table = compare_studies(frame).set_index("study")
    assert table.loc["b", "evaluated"] == 10 and table.loc["a", "trials"] == 20
    shared = {"madds": frame["madds"].max()}
    assert table.loc["a", "hypervolume"] == pytest.approx(
        study_hypervolume(frame[frame["study"] == "a"], references=shared))
    with pytest.raises(StudyNotFoundError, match="available: a, b"):
        load_study(storage, "c")


def test_sweep_results_include_the_report(tmp_path):
    paths = write_sweep_results(synthetic_study(None, "sweep", 8), tmp_path / "out")
    assert all(path.exists() for path in paths.values())
    assert "Pareto front" in paths["report"].read_text()
    assert {"study", "block_types", "latency_ms"} <= set(pd.read_csv(paths["trials"]).columns)


def test_combinations_cover_every_objective_pair():
    # Every pair of recorded objectives has a front (no KeyError on a name the sweep records).
    frame = _frame([(0.9, 5e6, 2e5), (0.8, 1e6, 1e5)])
    frame["latency_ms"] = [2.0, 1.0]
    frame["test_accuracy"] = [0.85, 0.8]
    for pair in itertools.combinations(["accuracy", "madds", "params", "latency"], 2):
        assert len(pareto_frame(frame, pair)) >= 1


def test_time_accounting_sums_every_phase_of_every_trial():
    frame = trials_frame(synthetic_study(None, "time", 6, failed=1))
    table = time_accounting(frame).set_index("phase")
    assert list(table.index) == [column.removeprefix("seconds_") for column in PHASE_COLUMNS]
    assert table["seconds"].sum() == pytest.approx(frame["duration_s"].sum())
    assert table.loc["train", "seconds"] == pytest.approx(frame["seconds_train"].sum())
    assert table["share"].sum() == pytest.approx(1.0)


def test_progress_names_running_trials_the_front_range_and_the_best():
    from mnsearch.cli.sweep_display import progress_line, running_table, summary
    from mnsearch.results.progress import snapshot

    study = synthetic_study(None, "progress", 8, running=2)
    progress = snapshot(study, ("accuracy", "madds"))
    frame = trials_frame(study)
    best = frame.loc[frame["val_accuracy"].idxmax()]
    assert progress.best.number == best["number"] and progress.best.val_accuracy == \
        best["val_accuracy"]
    front = pareto_frame(frame)
    assert progress.front_accuracy == (front["val_accuracy"].min(), front["val_accuracy"].max())
    assert [trial.number for trial in progress.running_trials] == [8, 9]
    assert running_table(progress.running_trials, 3).row_count == 2
    line = progress_line(progress, 20, 3)  # a log's line, where there is no terminal
    assert line.startswith(f"done {progress.complete + progress.pruned + progress.failed}/20 (")
    assert "; running #8 epoch " in line and ", #9" not in line and "; #9 epoch" in line
    text = summary("progress", progress, 12.0)
    assert f"best: trial #{best['number']}" in text and "front: validation accuracy" in text
    assert 0 < progress.steady_share < 1


def test_answers_copied_from_a_stopped_trial_were_not_trained():
    frame = _frame([(0.9, 5e6, 2e5), (0.8, 1e6, 1e5)])
    frame.loc[1, "state"] = "PRUNED"
    copy = frame.loc[[1]].assign(number=2, duplicate_of=1)
    frame = pd.concat([frame, copy], ignore_index=True)
    assert list(trained(frame)["number"]) == [0, 1]


def _frame_from_records(study):
    """The frame as it was built before columns were read in one pass: a dict per trial from
    its `TrialRecord` (the oracle `trials_frame` must still equal)."""
    import json

    from mnsearch.results.frames import RECORD_COLUMNS, _phase_columns, _rho, block_types
    from mnsearch.search.record import TrialRecord
    rows = []
    for trial in study.get_trials(deepcopy=False):
        record = TrialRecord.of(trial)
        finished, started = trial.datetime_complete, trial.datetime_start
        duration = (finished - started).total_seconds() if finished and started else None
        rows.append({"study": study.study_name, "number": trial.number,
                     "state": trial.state.name,
                     **{name: getattr(record, name) for name in RECORD_COLUMNS},
                     "block_types": block_types(record.blocks),
                     "spec": (json.dumps(record.spec, sort_keys=True) if record.spec is not None
                              else None),
                     "curve": record.curve, "started": started, "duration_s": duration,
                     **dict(zip(PHASE_COLUMNS, _phase_columns(record.phase_seconds, duration),
                                strict=True)),
                     **{f"param_{name}": value for name, value in trial.params.items()}})
    frame = pd.DataFrame(rows)
    frame["rho"] = _rho(frame)
    return frame


def test_trials_frame_equals_one_record_per_row():
    study = synthetic_study(None, "mixed", 30, seed=7, failed=3, running=2)
    study.add_trial(create_trial(  # a parameter no other trial sampled, no record at all
        state=TrialState.FAIL, params={"width": 0.5},
        distributions={"width": CategoricalDistribution([0.5])}))
    study.add_trial(create_trial(state=TrialState.PRUNED, user_attrs={"rejected": "too big"}))
    frame = trials_frame(study)
    pd.testing.assert_frame_equal(frame, _frame_from_records(study), check_exact=True)
    assert frame["param_width"].isna().sum() == len(frame) - 1
    assert frame.loc[frame["state"] == "PRUNED", "error"].isna().all()
