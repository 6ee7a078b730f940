"""Where a sweep's wall time goes: the phase accounting of one grid sweep, and its accuracy.

Command (the main job's grid; about as long as the main command's sweep):

    .venv/bin/python experiments/bench_sweep.py search_spaces/paper_v1_grid.yaml \
        [--jobs 1] [--epochs E] [--subset N] [--cold] [--out DIR]

Runs the space on a fresh journal storage in a temporary folder (or OUT/NAME-bench), then
prints: wall time; the seconds and share of every phase summed over trials (`train` is
steady-state training steps only; see mnsearch.train.phases); the share the issue's goal
counts (steady-state steps over trial time); per trial α, resolution, state, validation and test
accuracy and seconds; the accuracy range of trials trained to the end; and Spearman's ρ between
log Mult-Adds and validation accuracy (scipy.stats.spearmanr). `--cold` points the persistent
compilation cache at an empty folder, as on a fresh clone. Writes trials.csv and
accounting.csv to OUT/NAME-bench when --out is given.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
from rich.console import Console
from scipy.stats import spearmanr

from mnsearch.cli.sweep_display import sweep_and_write
from mnsearch.results.frames import completed, time_accounting, trained, trials_frame
from mnsearch.search.storage import open_storage
from mnsearch.search.study import SweepOptions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("space")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--subset", type=float)
    parser.add_argument("--cold", action="store_true",
                        help="start from an empty compilation cache (a fresh clone)")
    parser.add_argument("--no-early-stopping", action="store_true")
    parser.add_argument("--out", help="keep trials.csv and accounting.csv in OUT/NAME-bench")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.out) / f"{Path(args.space).stem}-bench" if args.out else Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        if args.cold:
            os.environ["MNSEARCH_COMPILATION_CACHE"] = str(Path(scratch) / "jax-cache")
        journal = folder / "bench.journal"
        journal.unlink(missing_ok=True)
        options = SweepOptions(study_name="bench", storage=str(journal), jobs=args.jobs,
                               epochs=args.epochs, subset=args.subset,
                               early_stopping=not args.no_early_stopping,
                               artifacts=str(Path(scratch) / "artifacts"))
        started = time.time()
        sweep_and_write(args.space, options, out=folder, console=Console(stderr=True))
        wall = time.time() - started
        frame = trials_frame(optuna.load_study(study_name="bench",
                                               storage=open_storage(str(journal))))
        report(frame, wall, folder if args.out else None)


def report(frame: pd.DataFrame, wall: float, out: Path | None) -> None:
    """Print the accounting and the accuracy summary (and write CSVs to `out`)."""
    table = time_accounting(frame)
    print(f"sweep wall time: {wall:.0f} s; trial time: {table['seconds'].sum():.0f} s")
    print(table.to_string(index=False, formatters={"seconds": "{:.1f}".format,
                                                   "share": "{:.1%}".format}))
    steady = table.set_index("phase").loc["train", "share"]
    print(f"steady-state training steps: {steady:.1%} of the trials' time")
    columns = ["number", "alpha", "resolution", "state", "madds", "val_accuracy",
               "test_accuracy", "duration_s", "seconds_train", "seconds_compile"]
    print(frame[[c for c in columns if c in frame]].to_string(index=False))
    finished = completed(frame)
    if len(finished):
        accuracy = finished["test_accuracy"]
        print(f"trained to the end: {len(finished)}; test accuracy {accuracy.min():.2%} – "
              f"{accuracy.max():.2%}")
    points = trained(frame).copy()
    if len(points) > 2:
        last = points["curve"].map(lambda curve: curve[-1] if isinstance(curve, list) else None)
        accuracy = points["val_accuracy"].fillna(last)
        rho = spearmanr(np.log(points["madds"].astype(float)), accuracy.astype(float)).statistic
        print(f"Spearman ρ(log Mult-Adds, validation accuracy) over {len(points)} trained "
              f"models (stopped ones at their last rung): {rho:.3f}")
    if out is not None:
        frame.to_csv(out / "trials.csv", index=False)
        table.to_csv(out / "accounting.csv", index=False)


if __name__ == "__main__":
    main()
