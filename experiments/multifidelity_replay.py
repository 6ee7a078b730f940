"""Replay the early-stopping rule on a committed full-budget sweep, for several parameters.

    python experiments/multifidelity_replay.py \
        experiments/results/paper_v1_grid-e8-s2000-full-budget/trials.csv [--min-dominating 1 2 3]

Training is deterministic for a seed, so the validation curve a trial records in a full-budget
sweep is, epoch for epoch, the curve it would have recorded before being stopped (checked on the
paper grid: every stopped trial's curve is a prefix of its full-budget curve). Replaying
`mnsearch.search.early_stopping.should_stop` in the order one worker runs a grid — cheapest first —
therefore tells which trials a real `--jobs 1` sweep stops, at which rung, in
milliseconds instead of a sweep's half hour. Compute is reported as epochs and as seconds (each
trial's full-budget seconds × epochs trained / budget). `experiments/multifidelity.py` then
confirms the chosen parameters with a real sweep.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd

from mnsearch.results.frames import study_hypervolume
from mnsearch.search.early_stopping import should_stop


def replay(frame: pd.DataFrame, min_dominating: int) -> np.ndarray:
    """Epochs each trial trains under the rule (frame in run order, full-budget curves)."""
    curves = [json.loads(curve) for curve in frame["curve"]]
    budget = len(curves[0])
    madds = frame["madds"].to_numpy(float)
    trained: list[int] = []
    for index, curve in enumerate(curves):
        epochs = budget
        for epoch in range(1, budget):
            others = [(curves[other][epoch - 1], {"madds": madds[other]})
                      for other in range(index) if trained[other] >= epoch]
            if should_stop(epoch, budget, curve[epoch - 1], {"madds": madds[index]}, others,
                           min_dominating):
                epochs = epoch
                break
        trained.append(epochs)
    return np.array(trained)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trials_csv", help="trials.csv of a --no-early-stopping sweep")
    parser.add_argument("--min-dominating", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    # One worker runs a grid cheapest first (a retried trial keeps its place in that order).
    frame = pd.read_csv(args.trials_csv).sort_values(["madds", "number"], kind="stable")
    frame = frame[frame["state"] == "COMPLETE"].reset_index(drop=True)
    budget = int(frame["epochs_done"].max())
    reference = frame["madds"].max()
    full = study_hypervolume(frame, references={"madds": reference})
    seconds = frame["train_seconds"].to_numpy(float)
    print(f"{len(frame)} trials, budget {budget} epochs, full-budget hypervolume {full:.4f}")
    print("| min_dominating | trained fully | stopped (at rung: count) | hypervolume | HV ratio "
          "| epochs fraction | seconds fraction |")
    print("|---:|---:|---|---:|---:|---:|---:|")
    for count in args.min_dominating:
        epochs = replay(frame, count)
        complete = epochs == budget
        stops = {int(rung): int((epochs == rung).sum()) for rung in np.unique(epochs[~complete])}
        volume = study_hypervolume(frame[complete], references={"madds": reference})
        print(f"| {count} | {complete.sum()} | {stops or '-'} | {volume:.4f} | "
              f"{volume / full:.4f} | {epochs.sum() / (budget * len(frame)):.3f} | "
              f"{(seconds * epochs / budget).sum() / seconds.sum():.3f} |")


if __name__ == "__main__":
    main()
