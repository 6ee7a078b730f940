"""The live display's incremental progress against the report's frame functions.

A `ProgressTracker` updated at random points of random histories (trials that complete, stop
early, are rejected, fail and are retried, answer from the record, record phase times) must
give the numbers the report computes from a fresh `trials_frame` of the whole study.
"""

from __future__ import annotations

import math

import optuna
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from optuna.trial import TrialState

from mnsearch.results.frames import (
    completed,
    pareto_frame,
    study_hypervolume,
    time_accounting,
    trials_frame,
)
from mnsearch.results.progress import ProgressTracker, snapshot
from mnsearch.search.record import TrialRecord, record
from mnsearch.search.storage import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)
OBJECTIVES = ("accuracy", "madds")

step = st.one_of(
    st.tuples(st.just("start"), st.sampled_from([1e6, 2e6, 4e6]), st.booleans()),
    st.tuples(st.just("complete"), st.integers(0, 20), st.floats(0.1, 0.9)),
    st.tuples(st.just("duplicate"), st.integers(0, 20)),
    st.tuples(st.just("prune"), st.integers(0, 20), st.booleans()),
    st.tuples(st.just("fail"), st.integers(0, 20), st.booleans()),
    st.tuples(st.just("update")),
)


def _expected(study: optuna.Study) -> dict:
    frame = trials_frame(study)
    states = frame["state"].value_counts()
    retried = set(frame["retry_of"].dropna())
    front = pareto_frame(frame, OBJECTIVES)
    points = completed(frame).dropna(subset=["val_accuracy"])
    table = time_accounting(frame).set_index("phase")
    total = table["seconds"].sum()
    return {
        "counts": tuple(int(states.get(name, 0)) for name in ("COMPLETE", "RUNNING", "WAITING",
                                                               "PRUNED")),
        "failed": int(((frame["state"] == "FAIL") & ~frame["number"].isin(retried)).sum()),
        "front": len(front),
        "hypervolume": study_hypervolume(frame, OBJECTIVES),
        "trained": len(completed(frame)),
        "running": tuple(frame.loc[frame["state"] == "RUNNING", "number"]),
        "front_accuracy": (front["val_accuracy"].min(), front["val_accuracy"].max())
        if len(front) else None,
        "best": int(points.loc[points["val_accuracy"].idxmax(), "number"])
        if len(points) else None,
        "steady": table.loc["train", "seconds"] / total if total else None,
    }


def _observed(progress) -> dict:
    return {
        "counts": (progress.complete, progress.running, progress.waiting, progress.pruned),
        "failed": progress.failed, "front": progress.pareto_size,
        "hypervolume": progress.hypervolume, "trained": progress.trained,
        "running": tuple(trial.number for trial in progress.running_trials),
        "front_accuracy": progress.front_accuracy,
        "best": progress.best.number if progress.best else None,
        "steady": progress.steady_share,
    }


def _close(observed: dict, expected: dict) -> bool:
    for name, value in expected.items():
        other = observed[name]
        if isinstance(value, float) and not pd.isna(value):
            if not math.isclose(other, value, rel_tol=1e-9, abs_tol=1e-12):
                return False
        elif value != other and not (value is None and other is None):
            if isinstance(value, tuple) and value and isinstance(value[0], float):
                if not all(math.isclose(a, b) for a, b in zip(other, value, strict=True)):
                    return False
            else:
                return False
    return True


def _finish(study: optuna.Study, trial: optuna.Trial, name: str, value: object,
            madds: float) -> None:
    record(trial, phase_seconds={"train": 0.002, "setup": 0.001}, train_seconds=0.003)
    if name == "complete":
        record(trial, val_accuracy=value)
        study.tell(trial, [value, madds])
    elif name == "prune":
        record(trial, rejected="too big" if value else None)
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, state=TrialState.FAIL)
        if value:  # retried, like a worker killed mid-trial
            study.enqueue_trial(trial.params,
                                user_attrs=TrialRecord(retry_of=trial.number).attributes())


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=30))
def test_the_tracker_gives_the_reports_numbers_after_every_change(steps, tmp_path_factory):
    path = tmp_path_factory.mktemp("progress") / "progress.journal"
    study = optuna.create_study(study_name="progress", storage=open_storage(str(path)),
                                directions=["maximize", "minimize"])
    tracker, live = ProgressTracker(study, OBJECTIVES), {}
    for action in [*steps, ("update",)]:
        if action[0] == "start":
            trial = study.ask()
            live[trial.number] = (trial, action[1])
            record(trial, madds=action[1], alpha=0.5, resolution=28, blocks="ds_3_1_16")
            if action[2]:
                record(trial, config_key=f"key-{action[1]}")
        elif action[0] == "update":
            assert _close(_observed(tracker.update()), _expected(study))
        elif live:
            number = sorted(live)[action[1] % len(live)]
            trial, madds = live.pop(number)
            if action[0] == "duplicate":
                record(trial, duplicate_of=0, val_accuracy=0.5)
                study.tell(trial, [0.5, madds])
            else:
                _finish(study, trial, action[0], action[2], madds)
    assert _close(_observed(snapshot(study, OBJECTIVES)), _expected(study))
