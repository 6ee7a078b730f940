"""Study results as pandas frames: one row per trial, Pareto fronts, hypervolume, progress.

The public names are re-exported here (`mnsearch.results.trials_frame`, ...).
"""

from mnsearch.results.frames import (
    COLUMNS,
    OBJECTIVES,
    StudyNotFoundError,
    compare_studies,
    completed,
    hypervolume_history,
    load_study,
    pareto_frame,
    stopped_early,
    studies_frame,
    study_hypervolume,
    study_names,
    study_objectives,
    time_accounting,
    trained,
    trials_frame,
)
from mnsearch.results.progress import Progress, snapshot

__all__ = [
    "COLUMNS",
    "OBJECTIVES",
    "Progress",
    "StudyNotFoundError",
    "compare_studies",
    "completed",
    "hypervolume_history",
    "load_study",
    "pareto_frame",
    "snapshot",
    "stopped_early",
    "studies_frame",
    "study_hypervolume",
    "study_names",
    "study_objectives",
    "trained",
    "time_accounting",
    "trials_frame",
]
