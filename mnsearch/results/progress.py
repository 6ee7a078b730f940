"""A sweep's progress at a glance: counts, Pareto size, hypervolume, what runs, the best.

The live display asks every second, so `ProgressTracker` keeps it current from what changed
since its last update (`search.index.StudyIndex`: new and unfinished trials only) and from
running totals, instead of rebuilding the study's frame (seconds at 100,000 trials). The
numbers are those of the report's frame functions — `pareto_frame`, `study_hypervolume`,
`time_accounting` — as `tests/results/test_progress.py` checks on random histories.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from mnsearch.pareto import hypervolume, normalized_losses
from mnsearch.results.frames import block_types, objective_columns
from mnsearch.search.index import StudyIndex
from mnsearch.search.record import ACCURACY_OBJECTIVES, COST_OBJECTIVES, TrialRecord
from mnsearch.train.phases import PHASES


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

    @property
    def done(self) -> int:
        """Trials that will not run again: complete, pruned or rejected, failed for good."""
        return self.complete + self.pruned + self.failed


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
    """Counts, Pareto size and hypervolume, computed as the report computes them (one read
    of the study; a display that asks again keeps a `ProgressTracker`)."""
    return ProgressTracker(study, objectives).update()


class ProgressTracker:
    """A study's `Progress`, updated from the trials that changed since the last update."""

    def __init__(self, study: optuna.Study, objectives: Sequence[str]) -> None:
        self.objectives = tuple(objectives)
        self.fields, _ = objective_columns(self.objectives)
        self.costs = {name: field for name, field in zip(self.objectives, self.fields,
                                                         strict=True) if name in COST_OBJECTIVES}
        self.index = StudyIndex(study, list(self.costs.values()))
        self._seen = 0  # how far into `index.finished_order` the totals go
        self._trained = 0
        self._references: dict[str, float] = {}  # largest cost among trained trials
        self._failed: set[int] = set()
        self._retried: set[int] = set()
        self._seconds: Counter[str] = Counter()  # phases, other and duration, finished trials
        self._best: tuple[float, int] | None = None  # (validation accuracy, −number)

    def update(self) -> Progress:
        """Read what changed and return the progress now."""
        self.index.refresh()
        for number in self.index.finished_order[self._seen:]:
            self._add(self.index.trials[number])
        self._seen = len(self.index.finished_order)
        unfinished = self.index.in_states(TrialState.RUNNING, TrialState.WAITING)
        retried = self._retried | {value for trial in unfinished
                                   if (value := TrialRecord.field_of(trial, "retry_of"))
                                   is not None}
        seconds = self._seconds + Counter()
        for trial in unfinished:
            seconds.update(_time_parts(trial))
        counts, front = self.index.counts, self.index.front()
        accuracies = [record.val_accuracy for number in front
                      if (record := TrialRecord.of(self.index.trials[number])).val_accuracy
                      is not None]
        return Progress(
            counts[TrialState.COMPLETE], counts[TrialState.RUNNING], counts[TrialState.WAITING],
            counts[TrialState.PRUNED], len(self._failed - retried), len(front),
            self._hypervolume(front), self._trained,
            tuple(_running(trial) for trial in unfinished if trial.state == TrialState.RUNNING),
            (min(accuracies), max(accuracies)) if accuracies else None, self._best_trial(),
            _steady_share(seconds))

    def _add(self, trial: FrozenTrial) -> None:
        """Fold a finished trial into the running totals."""
        record = TrialRecord.of(trial)
        if record.retry_of is not None:
            self._retried.add(record.retry_of)
        if trial.state == TrialState.FAIL:
            self._failed.add(trial.number)
        self._seconds.update(_time_parts(trial))
        if record.duplicate_of is not None:
            return
        if trial.state == TrialState.COMPLETE:
            self._trained += 1
            if record.val_accuracy is not None:
                candidate = (record.val_accuracy, -trial.number)
                self._best = max(self._best or candidate, candidate)
        if trial.state == TrialState.COMPLETE or (trial.state == TrialState.PRUNED
                                                  and record.rejected is None):
            for name, field in self.costs.items():  # `frames.cost_references`
                value = TrialRecord.field_of(trial, field)
                if value is not None:
                    self._references[name] = max(self._references.get(name, value), value)

    def _hypervolume(self, front: dict[int, Sequence[float]]) -> float:
        """`frames.study_hypervolume`: the front alone holds all of the set's volume."""
        if not front:
            return 0.0
        names = ["accuracy" if name in ACCURACY_OBJECTIVES else name for name in self.objectives]
        return hypervolume(normalized_losses(np.array(list(front.values()), dtype=float), names,
                                             self._references))

    def _best_trial(self) -> BestTrial | None:
        if self._best is None:
            return None
        number = -self._best[1]
        record = TrialRecord.of(self.index.trials[number])
        return BestTrial(number, record.alpha, record.resolution, float(record.madds or 0.0),
                         float(self._best[0]), record.test_accuracy)


def _running(trial: FrozenTrial) -> RunningTrial:
    record = TrialRecord.of(trial)
    return RunningTrial(trial.number, record.alpha, record.resolution,
                        block_types(record.blocks), record.epochs_done or 0,
                        record.images_per_second)


def _time_parts(trial: FrozenTrial) -> dict[str, float]:
    """A trial's share of `frames.time_accounting`: its duration and phase seconds (`other`:
    its time outside the recorded phases)."""
    start, end = trial.datetime_start, trial.datetime_complete
    duration = (end - start).total_seconds() if start and end else None
    parts = {"duration": duration or 0.0}
    phases = TrialRecord.field_of(trial, "phase_seconds")
    if phases:
        parts.update({phase: phases.get(phase, 0.0) or 0.0 for phase in PHASES})
        measured = sum(parts[phase] for phase in PHASES)
        parts["other"] = max(duration - measured, 0.0) if duration is not None else 0.0
    return parts


def _steady_share(seconds: Counter[str]) -> float | None:
    """Steady-state training steps over all trial time (`frames.time_accounting`)."""
    phases = {phase: float(seconds[phase]) for phase in (*PHASES, "other")}
    phases["other"] += max(seconds["duration"] - sum(phases.values()), 0.0)
    total = sum(phases.values())
    return phases["train"] / total if total else None
