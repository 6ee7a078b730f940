"""A sweep's progress at a glance: counts, Pareto size and hypervolume of a study."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import optuna

from mnsearch.results.frames import completed, pareto_frame, study_hypervolume, trials_frame


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
    return Progress(int(states.get("COMPLETE", 0)), int(states.get("RUNNING", 0)),
                    int(states.get("WAITING", 0)), int(states.get("PRUNED", 0)), failed,
                    len(pareto_frame(frame, objectives)),
                    study_hypervolume(frame, objectives), len(completed(frame)))
