"""What the <= 1M target of issue #15 would cost: fashion_mid's finals widened, priced and timed.

    .venv/bin/python experiments/fashion_wider.py [--steps 10] [--repeats 3] [--out CSV]

The two fashion_mid finals (proxy trials 16 and 3: 120K and 178K parameters) rebuilt from the
sweep's journal at α 0.35 to 1.0 (their per-stage widths kept), priced by `mnsearch.cost` and timed
by a training step of batch 128 on this CPU (`mnsearch.train.benchmark`, timed in alternation so a
noisy VM's drift falls on all of them). The hours of a 100-epoch final on all 54,000 training images
follow from the measured rate; the validation and test passes (16,000 images an epoch, inference at
~4x the training rate) are left out, about 8% more. Runs under tcmalloc where it is installed, as
`mnsearch` trains. Prints the table and writes it as CSV.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import optuna
import pandas as pd

from mnsearch.cli.allocator import restart_with_tcmalloc
from mnsearch.cost import cost
from mnsearch.nn import native
from mnsearch.search.space import build_spec, load_space
from mnsearch.search.storage import load_study, open_existing_storage
from mnsearch.train.benchmark import interleaved, step_function

RESULTS = Path("experiments/results/fashion_front")
PROXY_TRIALS = (16, 3)
ALPHAS = (0.35, 0.5, 0.75, 1.0)
TRAIN_IMAGES = 54_000
EPOCHS = 100
BATCH = 128


def candidates() -> dict[tuple[int, float], object]:
    """(proxy trial, α) -> the spec of that trial's configuration at that α, 28×28×1."""
    space = load_space("search_spaces/fashion_mid.yaml")
    study = load_study(open_existing_storage(str(RESULTS / "studies.journal")), "fashion_mid")
    specs = {}
    for number in PROXY_TRIALS:
        params = dict(study.trials[number].params)
        for alpha in ALPHAS:
            specs[number, alpha] = build_spec(space, {**params, "alpha": alpha}, in_channels=1,
                                              num_classes=10, dataset_resolution=28)
    return specs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "wider.csv")
    args = parser.parse_args()
    restart_with_tcmalloc(sys.argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    specs = candidates()
    rates = interleaved({key: step_function(spec, BATCH, "train") for key, spec in specs.items()},
                        args.steps, args.repeats, BATCH)
    rows = []
    for (number, alpha), spec in specs.items():
        totals = cost(spec)
        rows.append({"proxy_trial": number, "alpha": alpha, "params": totals.params,
                     "madds": totals.madds, "train_images_per_s": rates[number, alpha],
                     "hours_100_epochs": EPOCHS * TRAIN_IMAGES / rates[number, alpha] / 3600})
    table = pd.DataFrame(rows).assign(cpu=native.cpu_name(),
                                      avx512="avx512f" in native.cpu_flags())
    print(table.drop(columns=["cpu", "avx512"]).to_string(index=False, float_format="%.2f"))
    print(f"{table['cpu'].iloc[0]}; AVX-512: {table['avx512'].iloc[0]}; {args.out}")
    table.to_csv(args.out, index=False, float_format="%.3f")


if __name__ == "__main__":
    main()
