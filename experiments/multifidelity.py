"""Does rung early stopping keep the Pareto front while saving compute? Full budget vs early stop.

Command (about 2 × the space's grid time on 2 cores):

    .venv/bin/python experiments/multifidelity.py search_spaces/paper_v1_grid.yaml \
        [--epochs 8] [--subset 2000] [--out experiments/results]

Runs the space's grid twice on fresh journal storages — every trial at the full budget, then
with the early-stopping rule of `mnsearch.search` — and reports the final hypervolume of each
(same normalisation: Mult-Adds divided by the largest Mult-Adds of the grid) and the training
compute (epochs trained, and seconds). Writes a CSV row per run, each run's trials.csv,
pareto.csv and pareto.html under OUT/SPACE-full-budget and OUT/SPACE-early-stopping, and prints
a Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState
from rich.console import Console

from mnsearch.pareto import hypervolume, normalized_losses
from mnsearch.search import SweepOptions
from mnsearch.space import load_space
from mnsearch.storage import open_storage
from mnsearch.sweep import run_sweep


def _measure(study: optuna.Study, reference_madds: float) -> dict[str, float]:
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    values = np.array([trial.values for trial in complete])
    losses = normalized_losses(values, ("accuracy", "madds"), {"madds": reference_madds})
    trials = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    return {"hypervolume": hypervolume(losses),
            "epochs_trained": sum(t.user_attrs.get("epochs_done", 0) for t in trials),
            "train_seconds": sum(t.user_attrs.get("train_seconds", 0.0) for t in trials),
            "complete": len(complete), "stopped_early": len(trials) - len(complete)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("space")
    parser.add_argument("--epochs", type=int, help="budget per trial (default: the space's)")
    parser.add_argument("--subset", type=int, help="training images (default: the space's)")
    parser.add_argument("--out", default="experiments/results")
    args = parser.parse_args()
    space = load_space(args.space)
    name = space.name + (f"-e{args.epochs}" if args.epochs else "") + \
        (f"-s{args.subset}" if args.subset else "")
    console = Console()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for early_stopping in (False, True):
            journal = str(Path(folder) / f"early-{early_stopping}.journal")
            options = SweepOptions(study_name=space.name, storage=journal, sampler="grid",
                                   epochs=args.epochs, subset=args.subset,
                                   early_stopping=early_stopping,
                                   artifacts=str(Path(folder) / "artifacts"))
            started = time.time()
            label = "early-stopping" if early_stopping else "full-budget"
            run_sweep(args.space, options, console, out=Path(args.out) / f"{name}-{label}")
            study = optuna.load_study(study_name=space.name, storage=open_storage(journal))
            madds = [t.user_attrs["madds"] for t in study.trials if "madds" in t.user_attrs]
            row = {"space": name, "early_stopping": early_stopping,
                   **_measure(study, max(madds)), "wall_seconds": time.time() - started}
            rows.append(row)
    full, early = rows
    print("| run | hypervolume | epochs trained | train s | stopped early | wall s |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {'early stopping' if row['early_stopping'] else 'full budget'} | "
              f"{row['hypervolume']:.4f} | {row['epochs_trained']} | "
              f"{row['train_seconds']:.0f} | {row['stopped_early']} | {row['wall_seconds']:.0f} |")
    print(f"hypervolume ratio {early['hypervolume'] / full['hypervolume']:.4f}, compute ratio "
          f"{early['epochs_trained'] / full['epochs_trained']:.3f} (epochs), "
          f"{early['train_seconds'] / full['train_seconds']:.3f} (seconds)")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    target = Path(args.out) / f"multifidelity_{name}.csv"
    with open(target, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
