"""A sweep's progress at a glance: counts, Pareto size, hypervolume, what runs, the best."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import optuna
import pandas as pd

from mnsearch.results.frames import (
    completed,
    pareto_frame,
    study_hypervolume,
    time_accounting,
    trials_frame,
)


@dataclass(frozen=True)
class Progress:
    """A snapshot of a study, as the live display and the summary show it.

    `failed` counts failed trials that were not retried (a killed worker's trial is retried).
    """

    complete: int
    running: int
    waiting: int
    pruned: int
    failed: int
    pareto_size: int
    hypervolume: float
    trained: int
    running_trials: tuple[RunningTrial, ...] = ()
    front_accuracy: tuple[float, float] | None = None  # lowest and highest on the front
    best: BestTrial | None = None
    steady_share: float | None = None  # steady-state training steps / trial time


@dataclass(frozen=True)
class RunningTrial:
    """What a running trial is, and how far it got (the live display's rows)."""

    number: int
    alpha: float | None
    resolution: int | None
    block_types: str | None
    epochs_done: int
    images_per_second: float | None


@dataclass(frozen=True)
class BestTrial:
    """The most accurate complete trial (by validation accuracy) and what it costs."""

    number: int
    alpha: float | None
    resolution: int | None
    madds: float
    val_accuracy: float
    test_accuracy: float | None


def snapshot(study: optuna.Study, objectives: Sequence[str]) -> Progress:
    """Counts, Pareto size and hypervolume, computed as the report computes them.

    One read of the storage (`trials_frame`): the live display calls this every second.
    """
    frame = trials_frame(study)
    if frame.empty:
        return Progress(0, 0, 0, 0, 0, 0, 0.0, 0)
    states = frame["state"].value_counts()
    retried = set(frame["retry_of"].dropna())
    failed = int(((frame["state"] == "FAIL") & ~frame["number"].isin(retried)).sum())
    front = pareto_frame(frame, objectives)
    accuracies = front["val_accuracy"].dropna() if len(front) else front
    return Progress(int(states.get("COMPLETE", 0)), int(states.get("RUNNING", 0)),
                    int(states.get("WAITING", 0)), int(states.get("PRUNED", 0)), failed,
                    len(front), study_hypervolume(frame, objectives), len(completed(frame)),
                    running_trials(frame),
                    (float(accuracies.min()), float(accuracies.max())) if len(accuracies)
                    else None, best_trial(frame), _steady_share(frame))


def running_trials(frame: pd.DataFrame) -> tuple[RunningTrial, ...]:
    """The running trials, in trial order."""
    running = frame[frame["state"] == "RUNNING"]
    return tuple(RunningTrial(int(row.number), _number(row.alpha), _integer(row.resolution),
                              row.block_types if isinstance(row.block_types, str) else None,
                              _integer(row.epochs_done) or 0, _number(row.images_per_second))
                 for row in running.itertuples())


def best_trial(frame: pd.DataFrame) -> BestTrial | None:
    """The complete trial with the highest validation accuracy (None before the first)."""
    points = completed(frame).dropna(subset=["val_accuracy"])
    if points.empty:
        return None
    row = points.loc[points["val_accuracy"].idxmax()]
    return BestTrial(int(row["number"]), _number(row["alpha"]), _integer(row["resolution"]),
                     float(row["madds"]), float(row["val_accuracy"]),
                     _number(row["test_accuracy"]))


def _steady_share(frame: pd.DataFrame) -> float | None:
    table = time_accounting(frame).set_index("phase")
    total = table["seconds"].sum()
    return float(table.loc["train", "seconds"] / total) if total else None


def _number(value: object) -> float | None:
    return float(value) if value is not None and pd.notna(value) else None  # type: ignore[arg-type]


def _integer(value: object) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None
