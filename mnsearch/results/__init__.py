"""Study results as pandas frames: one row per trial, Pareto fronts, hypervolume, progress.

The public names are re-exported here (`mnsearch.results.trials_frame`, ...), with the
study loaders of `mnsearch.search.storage` that every reader starts from.
"""

from mnsearch.results.frames import (
    COLUMNS,
    OBJECTIVES,
    compare_studies,
    completed,
    hypervolume_history,
    pareto_frame,
    stopped_early,
    studies_frame,
    study_hypervolume,
    study_objectives,
    time_accounting,
    trained,
    trials_frame,
)
from mnsearch.results.progress import Progress, snapshot
from mnsearch.search.storage import StudyNotFoundError, load_study, study_names

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
