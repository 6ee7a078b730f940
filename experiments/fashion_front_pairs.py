"""Can the splits tell issue #15's finals apart? Each target's pick against its rivals, paired.

    .venv/bin/python experiments/fashion_front_pairs.py [--out experiments/results/fashion_front]

Every exported final under `experiments/results/fashion_front/` (a folder with spec.yaml and
weights.npz) is evaluated once on the validation split (drawn again from its recipe) and once
on the 10,000 test images, keeping which images it got right (`mnsearch.export.evaluate`). For
each target size, the final with the best validation accuracy under it (the pick, as
`targets.csv` chooses) is compared with every other final under that size on the same images
(each pair once: a larger size with the same pick adds only its new rivals):
McNemar's exact test and a bootstrap interval of the difference (`mnsearch.results.paired`,
what `mnsearch evaluate A --against B` prints). Writes `pairs.csv` and prints it: a p-value
above 0.05 on validation means the pick won by less than its split can resolve.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from mnsearch.cost import cost
from mnsearch.data.load import load_dataset
from mnsearch.export.evaluate import PerImage, evaluate_images
from mnsearch.results.paired import paired_comparison
from mnsearch.spec.io import load_spec

SIZES = (("< 100K", 100_000, False), ("<= 300K", 300_000, True), ("<= 1M", 1_000_000, True))
SPLITS = ("val", "test")


def finals(results: Path) -> dict[str, int]:
    """Exported final folder name -> parameters."""
    return {folder.name: cost(load_spec(folder / "spec.yaml")).params
            for folder in sorted(results.iterdir())
            if (folder / "spec.yaml").is_file() and (folder / "weights.npz").is_file()}


def pairs(results: Path) -> pd.DataFrame:
    """One row per (size, rival, split): the pick against the rival on the same images."""
    dataset = load_dataset("fashion-mnist")
    sizes = finals(results)
    evaluated: dict[tuple[str, str], PerImage] = {
        (name, split): evaluate_images(results / name, dataset, split)
        for name in sizes for split in SPLITS}
    rows, seen = [], set()
    for label, limit, inclusive in SIZES:
        under = [name for name, params in sizes.items()
                 if params < limit or (inclusive and params == limit)]
        pick = max(under, key=lambda name: evaluated[name, "val"].result.accuracy)
        for rival in (name for name in under if name != pick and (pick, name) not in seen):
            seen.add((pick, rival))  # a larger size with the same pick lists only new rivals
            for split in SPLITS:
                first, second = evaluated[pick, split], evaluated[rival, split]
                if not np.array_equal(first.images, second.images):
                    continue  # other validation splits: only the test split pairs them
                comparison = paired_comparison(first.correct, second.correct)
                rows.append({"target": label, "pick": pick, "rival": rival, "split": split,
                             "pick_params": sizes[pick], "rival_params": sizes[rival],
                             **comparison.as_dict()})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("experiments/results/fashion_front"))
    args = parser.parse_args()
    table = pairs(args.out)
    table.to_csv(args.out / "pairs.csv", index=False, float_format="%.6g")
    shown = table.assign(**{column: 100 * table[column] for column in
                            ("accuracy_a", "accuracy_b", "difference", "low", "high")})
    print(shown.drop(columns=["pick_params", "rival_params", "images"]).to_string(
        index=False, float_format="%.3g"))
    print(f"{args.out / 'pairs.csv'}")


if __name__ == "__main__":
    main()
