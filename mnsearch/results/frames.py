"""Studies as tidy pandas tables: one row per trial, Pareto fronts, hypervolume, comparisons.

The row holds what a reader of the V1 paper's figures wants next to each point: α, resolution,
ρ, block choices, Mult-Adds, params, latency (when measured), validation and test accuracy,
training time, state, and the study it came from, so several studies stack into one frame.

Hypervolume reference point (the convention of `mnsearch.pareto`): accuracy becomes the loss
1 − accuracy and every cost (Mult-Adds, params, latency) becomes value / reference, where the
reference is the largest value of that cost among the trials considered (or the value passed in
`references`, which comparisons across studies share); the volume is then measured against the
point (1, …, 1). It lies in [0, 1], higher is better, and it is comparable only between fronts
measured with the same references.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence

import numpy as np
import optuna
import pandas as pd

from mnsearch.errors import MnsearchError
from mnsearch.pareto import hypervolume, normalized_losses, pareto_mask
from mnsearch.search.record import (
    ACCURACY_OBJECTIVES,
    COST_OBJECTIVES,
    OBJECTIVES,
    StudyRecord,
)
from mnsearch.search.storage import load_study
from mnsearch.train.phases import PHASES

# Record fields that become plain columns (the spec becomes JSON text; the recipe, worker and
# heartbeat stay in the record).
RECORD_COLUMNS = ["alpha", "resolution", "madds", "params", "params_keras", "latency_ms",
                  "val_accuracy", "test_accuracy", "int8_accuracy", "train_seconds", "epochs_done",
                  "images_per_second", "duplicate_of",
                  "retry_of", "rejected", "error", "config_key", "blocks", "proxy_trial"]
# Where each trial's time went (mnsearch.train.phases), plus `other`: trial time outside the run.
PHASE_COLUMNS = [f"seconds_{phase}" for phase in (*PHASES, "other")]
COLUMNS = ["study", "number", "state", *RECORD_COLUMNS, "rho", "block_types", "spec", "curve",
           "started", "duration_s", *PHASE_COLUMNS]
HISTORY_BLOCK = 512  # trials checked against the front at once by `hypervolume_history`
# json.dumps(spec, sort_keys=True) without a new encoder per call (specs from a storage are
# never circular, so the check is skipped: the same text, a third faster)
_spec_json = json.JSONEncoder(sort_keys=True, check_circular=False).encode
# The order `trials_frame` builds them in: the sampled parameters follow, then `rho`.
ROW_COLUMNS = [column for column in COLUMNS if column != "rho"]


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial (columns `COLUMNS`); sampled parameters appear as `param_<name>`.

    Rows are built as plain lists read straight from each trial's user attributes (what
    `TrialRecord.of` would return field by field, without building 100,000 records), and
    pandas infers the column types from them as it did from one dict per row: 100,000 trials
    take about 2 s instead of 6 s.
    """
    trials = study.get_trials(deepcopy=False)
    if not trials:
        return pd.DataFrame(columns=COLUMNS)
    params = list(dict.fromkeys(name for trial in trials for name in trial.params))
    rows = [_trial_row(study.study_name, trial, params) for trial in trials]
    frame = pd.DataFrame(rows, columns=[*ROW_COLUMNS, *(f"param_{name}" for name in params)])
    frame["rho"] = _rho(frame)
    return frame


def _trial_row(study_name: str, trial: optuna.trial.FrozenTrial, params: list[str]) -> list:
    """One trial's values in the order of `ROW_COLUMNS`, then `params` (NaN where a trial did
    not sample one, as a frame built from dicts fills a missing key)."""
    attributes = trial.user_attrs
    spec = attributes.get("spec")
    started, finished = trial.datetime_start, trial.datetime_complete
    duration = (finished - started).total_seconds() if finished and started else None
    sampled = trial.params
    return [study_name, trial.number, trial.state.name,
            *[attributes.get(name) for name in RECORD_COLUMNS],
            block_types(attributes.get("blocks")),
            _spec_json(spec) if spec is not None else None,
            attributes.get("curve"), started, duration,
            *_phase_columns(attributes.get("phase_seconds"), duration),
            *[sampled.get(name, np.nan) for name in params]]


def _phase_columns(phases: dict[str, float] | None, duration: float | None
                   ) -> list[float | None]:
    """The values of `PHASE_COLUMNS`: each phase's seconds, and the rest of the trial's time."""
    if not phases:
        return [None] * len(PHASE_COLUMNS)
    columns: list[float | None] = [phases.get(phase, 0.0) for phase in PHASES]
    measured = sum(value or 0.0 for value in columns)
    columns.append(max(duration - measured, 0.0) if duration is not None else None)
    return columns


def time_accounting(frame: pd.DataFrame) -> pd.DataFrame:
    """Where a sweep's trial time went: seconds and share of each phase, summed over trials.

    Rows follow `PHASE_COLUMNS` (`train` is steady-state training steps only); trials answered
    from the record, rejected ones and those without phase records count as `other`.
    """
    durations = pd.to_numeric(frame.get("duration_s"), errors="coerce").fillna(0.0).sum() \
        if len(frame) else 0.0
    seconds = {column.removeprefix("seconds_"): float(pd.to_numeric(
        frame[column], errors="coerce").fillna(0.0).sum()) if column in frame else 0.0
        for column in PHASE_COLUMNS}
    seconds["other"] += max(durations - sum(seconds.values()), 0.0)
    total = sum(seconds.values())
    return pd.DataFrame({"phase": list(seconds), "seconds": list(seconds.values()),
                         "share": [value / total if total else 0.0 for value in seconds.values()]})


def _rho(frame: pd.DataFrame) -> pd.Series:
    """ρ as the space sampled it (`param_rho`), else resolution / the study's largest one.

    Spaces on small images sample ρ relative to the dataset's size (28 px is ρ = 1 for
    Fashion-MNIST), as the V1 paper's 224/192/160/128 are relative to 224.
    """
    largest = frame.groupby("study")["resolution"].transform("max")
    rho = frame["resolution"] / largest
    if "param_rho" in frame:
        rho = frame["param_rho"].astype(float).where(frame["param_rho"].notna(), rho)
    return rho


@functools.lru_cache(maxsize=65536)
def block_types(blocks: str | None) -> str | None:
    """The block types of a spec's block text, e.g. 'ds' (V1), 'ir' (V2/V3) or 'ds+ir'
    (cached: a large study repeats a few thousand block texts over 100,000 trials)."""
    if not blocks:
        return None
    return "+".join(sorted({block.split("_", 1)[0] for block in blocks.split()}))


def studies_frame(storage: optuna.storages.BaseStorage, names: Iterable[str]) -> pd.DataFrame:
    """Several studies stacked into one frame (the `study` column tells them apart)."""
    frames = [trials_frame(load_study(storage, name)) for name in names]
    frames = [frame for frame in frames if len(frame)]
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat(frames, ignore_index=True)


def completed(frame: pd.DataFrame) -> pd.DataFrame:
    """Complete trials that were evaluated (duplicates answered from the record excluded)."""
    if frame.empty:
        return frame
    return frame[(frame["state"] == "COMPLETE") & frame["duplicate_of"].isna()]


def objective_columns(objectives: Sequence[str]) -> tuple[list[str], list[str]]:
    """Frame columns and directions of objective names ('accuracy', 'madds', 'latency'…)."""
    unknown = [name for name in objectives if name not in OBJECTIVES]
    if unknown:
        raise MnsearchError(f"unknown objective(s) {unknown}; choose from {list(OBJECTIVES)}")
    return ([OBJECTIVES[name].field for name in objectives],
            [OBJECTIVES[name].direction for name in objectives])


def pareto_frame(frame: pd.DataFrame, objectives: Sequence[str] = ("accuracy", "madds"),
                 ) -> pd.DataFrame:
    """Complete, evaluated trials on the Pareto front of `objectives`, sorted by Mult-Adds.

    Trials lacking a value for one of the objectives (latency never measured) are left out.
    """
    columns, directions = objective_columns(objectives)
    points = completed(frame)
    points = points.dropna(subset=columns) if len(points) else points
    if points.empty:
        return points
    values = points[columns].to_numpy(dtype=float)
    return points[pareto_mask(values, directions)].sort_values("madds")


def trained(frame: pd.DataFrame) -> pd.DataFrame:
    """Trials that were trained: complete or stopped early, duplicates excluded.

    Trials rejected by a constraint (PRUNED with `rejected`) were never trained, nor were
    answers copied from an earlier trial's record (`duplicate_of`).
    """
    if frame.empty:
        return frame
    stopped = (frame["state"] == "PRUNED") & frame["rejected"].isna() \
        & frame["duplicate_of"].isna()
    return frame[stopped | frame.index.isin(completed(frame).index)]


def stopped_early(frame: pd.DataFrame) -> pd.DataFrame:
    """Trials the rung rule stopped, each with `val_accuracy` set to its last rung's accuracy.

    They are not on any front (their accuracy is at a lower budget) but belong in the paper's
    figures: drop them and whole α or resolution lines vanish from Figure 4.
    """
    if frame.empty:
        return frame
    stopped = frame[(frame["state"] == "PRUNED") & frame["rejected"].isna()
                    & frame["duplicate_of"].isna()].copy()
    last = stopped["curve"].map(lambda curve: curve[-1] if isinstance(curve, list) and curve
                                else None)
    stopped["val_accuracy"] = pd.to_numeric(last, errors="coerce")
    return stopped.dropna(subset=["val_accuracy"])


def cost_references(frame: pd.DataFrame, objectives: Sequence[str]) -> dict[str, float]:
    """The reference of every cost objective: its largest value among the trained trials.

    Stopped trials count: their costs are known before training, and leaving them out would
    move the reference (and every hypervolume) whenever the dearest model stops early.
    """
    columns, _ = objective_columns(objectives)
    points = trained(frame)
    return {name: float(points[column].max()) for name, column in zip(objectives, columns,
                                                                      strict=True)
            if name in COST_OBJECTIVES and len(points)}


def _losses(points: pd.DataFrame, objectives: Sequence[str],
            references: dict[str, float]) -> np.ndarray:
    """Losses in [0, 1] (module docstring); test accuracy is treated like accuracy."""
    columns, _ = objective_columns(objectives)
    names = ["accuracy" if name in ACCURACY_OBJECTIVES else name for name in objectives]
    return normalized_losses(points[columns].to_numpy(dtype=float), names, references)


def study_hypervolume(frame: pd.DataFrame, objectives: Sequence[str] = ("accuracy", "madds"),
                      references: dict[str, float] | None = None) -> float:
    """Hypervolume of the evaluated trials (reference point: module docstring)."""
    columns, _ = objective_columns(objectives)
    points = completed(frame)
    points = points.dropna(subset=columns) if len(points) else points
    if points.empty:
        return 0.0
    references = references or cost_references(frame, objectives)
    return hypervolume(_losses(points, objectives, references))


def hypervolume_history(frame: pd.DataFrame, objectives: Sequence[str] = ("accuracy", "madds"),
                        references: dict[str, float] | None = None) -> pd.DataFrame:
    """Hypervolume after each evaluated trial, in trial order, with the compute spent so far.

    Columns: number, hypervolume, compute_seconds (cumulative `train_seconds` of every trial,
    pruned and failed ones included: they cost compute too). The volume is recomputed only when
    a trial enters the front, and only the trials that the front at the start of their block
    does not already cover are looked at one by one, so 100,000 trials take a tenth of a second.
    """
    columns, _ = objective_columns(objectives)
    history = pd.DataFrame(columns=["number", "hypervolume", "compute_seconds"])
    if frame.empty:
        return history
    ordered = frame.sort_values("number")
    spent = ordered["train_seconds"].fillna(0.0).astype(float).cumsum()
    points = completed(ordered).dropna(subset=columns)
    if points.empty:
        return history
    references = references or cost_references(frame, objectives)
    losses = _losses(points, objectives, references)
    front, volume = np.empty((0, losses.shape[1])), 0.0
    entering, volumes = [], []
    for start in range(0, len(losses), HISTORY_BLOCK):
        for index in start + _not_covered(front, losses[start:start + HISTORY_BLOCK]):
            loss = losses[index]
            if not np.any(np.all(front <= loss, axis=1)):
                front = np.vstack([front[~np.all(loss <= front, axis=1)], loss])
                volume = hypervolume(front)
                entering.append(index)
                volumes.append(volume)
    # every trial keeps the volume of the last one that entered (the first always enters)
    latest = np.searchsorted(entering, np.arange(len(losses)), side="right") - 1
    volumes = np.asarray(volumes)[latest]
    return pd.DataFrame({"number": points["number"].to_numpy(), "hypervolume": volumes,
                         "compute_seconds": spent.loc[points.index].to_numpy()})


def _not_covered(front: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Positions of the rows that no front member is as good as or better than everywhere."""
    covered = np.all(front[None, :, :] <= rows[:, None, :], axis=2).any(axis=1)
    return np.flatnonzero(~covered)


def compare_studies(frame: pd.DataFrame, objectives: Sequence[str] = ("accuracy", "madds"),
                    ) -> pd.DataFrame:
    """One row per study: counts, front size, best accuracy, cheapest model, hypervolume.

    The hypervolumes share one reference (the largest costs over all the studies), so they can
    be compared with each other.
    """
    references = cost_references(frame, objectives)
    rows = []
    for name, group in frame.groupby("study", sort=True):
        points = completed(group)
        rows.append({
            "study": name, "trials": len(group), "evaluated": len(points),
            "pareto": len(pareto_frame(group, objectives)),
            "best_accuracy": points["val_accuracy"].max() if len(points) else None,
            "min_madds": points["madds"].min() if len(points) else None,
            "train_seconds": group["train_seconds"].fillna(0.0).sum(),
            "hypervolume": study_hypervolume(group, objectives, references)})
    return pd.DataFrame(rows)


def study_objectives(study: optuna.Study) -> tuple[str, ...]:
    """The objectives a study records (sweeps store them), else accuracy vs Mult-Adds."""
    return StudyRecord.of(study).objectives
