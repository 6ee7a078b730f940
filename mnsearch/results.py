"""Studies as tidy pandas tables: one row per trial, the Pareto front, files for a sweep.

The row holds what a reader of the V1 paper's figures wants next to each point: α, resolution,
ρ, Mult-Adds, params, validation and test accuracy, training time, state.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pandas as pd

from mnsearch.pareto import pareto_mask

COLUMNS = ["number", "state", "alpha", "resolution", "madds", "params", "val_accuracy",
           "test_accuracy", "train_seconds", "duplicate_of", "blocks"]


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial; sampled parameters appear as `param_<name>` columns."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        row = {"number": trial.number, "state": trial.state.name}
        row.update({name: trial.user_attrs.get(name) for name in COLUMNS[2:]})
        row.update({f"param_{name}": value for name, value in trial.params.items()})
        rows.append(row)
    frame = pd.DataFrame(rows, columns=None if rows else COLUMNS)
    if len(frame):
        frame["rho"] = frame["resolution"] / frame["resolution"].max()
    return frame


def pareto_frame(frame: pd.DataFrame, objectives: tuple[str, ...] = ("accuracy", "madds"),
                 ) -> pd.DataFrame:
    """Complete, trained-or-recorded trials on the Pareto front, sorted by Mult-Adds."""
    columns = {"accuracy": "val_accuracy", "madds": "madds", "params": "params"}
    complete = frame[(frame["state"] == "COMPLETE") & frame["duplicate_of"].isna()]
    if complete.empty:
        return complete
    directions = ["maximize" if name == "accuracy" else "minimize" for name in objectives]
    values = complete[[columns[name] for name in objectives]].to_numpy(dtype=float)
    return complete[pareto_mask(values, directions)].sort_values("madds")


def write_sweep_results(study: optuna.Study, folder: str | Path) -> dict[str, Path]:
    """trials.csv, pareto.csv and the accuracy-vs-Mult-Adds figure (HTML) of a study."""
    from mnsearch.figures import accuracy_vs_madds

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    frame = trials_frame(study)
    objectives = tuple(study.user_attrs.get("objectives", ("accuracy", "madds")))
    paths = {"trials": folder / "trials.csv", "pareto": folder / "pareto.csv",
             "figure": folder / "pareto.html"}
    frame.to_csv(paths["trials"], index=False)
    pareto_frame(frame, objectives).to_csv(paths["pareto"], index=False)
    figure = accuracy_vs_madds(frame, title=f"{study.study_name}: accuracy vs Mult-Adds")
    figure.write_html(paths["figure"], include_plotlyjs=True)
    return paths

