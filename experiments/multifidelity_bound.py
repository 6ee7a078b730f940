"""Lower bound on the compute of ANY early-stopping rule that keeps hypervolume within 2%.

Replays a committed full-budget sweep (trials.csv): a rule must train some set S of trials to
the full budget (the final front is made of those) and gives every other trial at least the
first rung. The cheapest S whose front keeps >= 98% of the full hypervolume gives the least
compute any rule can spend, even one that knew the final accuracies in advance.

    python experiments/multifidelity_bound.py \
        experiments/results/paper_v1_grid-full-budget/trials.csv --epochs 3

Prints, for each size of S, the best hypervolume ratio and the compute fraction it implies,
for the given budget and, for comparison, for longer budgets (same accuracies assumed).
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
import pandas as pd

from mnsearch.pareto import hypervolume, normalized_losses


def best_subsets(losses: np.ndarray) -> list[tuple[int, float, tuple[int, ...]]]:
    """For k = 1..n: the k trials whose front has the largest hypervolume (brute force)."""
    results = []
    for size in range(1, len(losses) + 1):
        subset = max(itertools.combinations(range(len(losses)), size),
                     key=lambda chosen: hypervolume(losses[list(chosen)]))
        results.append((size, hypervolume(losses[list(subset)]), subset))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trials_csv")
    parser.add_argument("--epochs", type=int, default=3, help="the sweep's budget")
    parser.add_argument("--within", type=float, default=0.02)
    args = parser.parse_args()
    frame = pd.read_csv(args.trials_csv)
    frame = frame[frame["state"] == "COMPLETE"].reset_index(drop=True)
    points = frame[["val_accuracy", "madds"]].to_numpy(float)
    losses = normalized_losses(points, ["accuracy", "madds"], {"madds": points[:, 1].max()})
    full, count = hypervolume(losses), len(losses)
    print(f"{count} trials, full-budget hypervolume {full:.4f}, budget {args.epochs} epochs")
    print("k trained fully | best HV ratio | least compute fraction at budget "
          f"{args.epochs} / 8 / 16 epochs (others stopped after epoch 1) | trials")
    for size, volume, subset in best_subsets(losses):
        fractions = [(budget * size + (count - size)) / (budget * count)
                     for budget in (args.epochs, 8, 16)]
        numbers = sorted(int(frame.loc[index, "number"]) for index in subset)
        print(f"{size:>2} | {volume / full:.4f} | "
              + " / ".join(f"{fraction:.3f}" for fraction in fractions) + f" | {numbers}")
        if volume / full >= 1 - args.within:
            break


if __name__ == "__main__":
    main()
