"""Does rung early stopping keep the Pareto front while saving compute? Full budget vs early stop.

Command (about 2 × the space's grid time on 2 cores):

    .venv/bin/python experiments/multifidelity.py search_spaces/paper_v1_grid.yaml \
        [--epochs 8] [--subset 2000] [--min-dominating 1] [--reuse-full] [--out experiments/results]

Runs the space's grid on fresh journal storages — every trial at the full budget, then with the
early-stopping rule of `search.early_stopping` — and reports the final hypervolume of each (same
normalisation: Mult-Adds divided by the largest Mult-Adds of the grid) and the training compute
(epochs trained, and seconds). `--reuse-full` takes the full-budget run from
OUT/NAME-full-budget/trials.csv when it is there (training is deterministic for a seed, so a
rerun would repeat it). Writes each run's trials.csv, pareto.csv and pareto.html under
OUT/NAME-full-budget and OUT/NAME-early-stopping-mM, a CSV row per run in
OUT/multifidelity_NAME-mM.csv, and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import pandas as pd
from rich.console import Console

from mnsearch.cli.sweep_display import sweep_and_write
from mnsearch.results.frames import completed, study_hypervolume, trained
from mnsearch.search.early_stopping import MIN_DOMINATING
from mnsearch.search.space import load_space
from mnsearch.search.study import SweepOptions


def _measure(trials_csv: Path) -> dict[str, float]:
    """Hypervolume (Mult-Adds over the largest trained one, stopped trials included), compute."""
    frame = pd.read_csv(trials_csv)
    points, complete = trained(frame), completed(frame)
    return {"hypervolume": study_hypervolume(frame),
            "epochs_trained": int(points["epochs_done"].fillna(0).sum()),
            "train_seconds": float(points["train_seconds"].fillna(0).sum()),
            "complete": len(complete), "stopped_early": len(points) - len(complete)}


def _run(space_path: str, options: SweepOptions, console: Console, out: Path) -> float:
    """Run one grid sweep into `out`; returns its wall time in seconds."""
    started = time.time()
    sweep_and_write(space_path, options, console, out=out)
    return time.time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("space")
    parser.add_argument("--epochs", type=int, help="budget per trial (default: the space's)")
    parser.add_argument("--subset", type=int, help="training images (default: the space's)")
    parser.add_argument("--min-dominating", type=int, default=MIN_DOMINATING)
    parser.add_argument("--reuse-full", action="store_true",
                        help="reuse OUT/NAME-full-budget/trials.csv when present")
    parser.add_argument("--out", default="experiments/results")
    args = parser.parse_args()
    space = load_space(args.space)
    name = space.name + (f"-e{args.epochs}" if args.epochs else "") + \
        (f"-s{args.subset}" if args.subset else "")
    console = Console()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for early_stopping in (False, True):
            label = f"early-stopping-m{args.min_dominating}" if early_stopping else "full-budget"
            out = Path(args.out) / f"{name}-{label}"
            wall = None
            if early_stopping or not (args.reuse_full and (out / "trials.csv").exists()):
                options = SweepOptions(
                    study_name=space.name, storage=str(Path(folder) / f"{label}.journal"),
                    sampler="grid", epochs=args.epochs, subset=args.subset,
                    early_stopping=early_stopping, min_dominating=args.min_dominating,
                    artifacts=str(Path(folder) / "artifacts"))
                wall = _run(args.space, options, console, out)
            rows.append({"space": name, "early_stopping": early_stopping,
                         "min_dominating": args.min_dominating if early_stopping else None,
                         **_measure(out / "trials.csv"), "wall_seconds": wall})
    full, early = rows
    print("| run | hypervolume | epochs trained | train s | stopped early | wall s |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        wall = "reused" if row["wall_seconds"] is None else f"{row['wall_seconds']:.0f}"
        print(f"| {'early stopping' if row['early_stopping'] else 'full budget'} | "
              f"{row['hypervolume']:.4f} | {row['epochs_trained']} | "
              f"{row['train_seconds']:.0f} | {row['stopped_early']} | {wall} |")
    print(f"hypervolume ratio {early['hypervolume'] / full['hypervolume']:.4f}, compute ratio "
          f"{early['epochs_trained'] / full['epochs_trained']:.3f} (epochs), "
          f"{early['train_seconds'] / full['train_seconds']:.3f} (seconds)")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    target = Path(args.out) / f"multifidelity_{name}-m{args.min_dominating}.csv"
    with open(target, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
