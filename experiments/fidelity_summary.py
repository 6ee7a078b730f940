"""The proxy-fidelity record of a proxy study and its final study (`mnsearch finalize`).

    python experiments/fidelity_summary.py --study paper_v1_grid \
        --storage experiments/results/fidelity/paper_v1_grid/studies.journal \
        --out experiments/results/fidelity/paper_v1_grid

Writes `fidelity.csv` (one row per configuration: proxy and final accuracies, fronts, regret),
`fidelity_summary.csv` (τ, ρ with bootstrap intervals, regret, front membership; ranked by the
final models' validation and test accuracy), the figure as PNG (`mnsearch report --study NAME`
has it interactive), and prints both tables with the wall time the two studies took.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from mnsearch.plots.fidelity import fidelity_figure
from mnsearch.plots.image import write_png
from mnsearch.results.fidelity import fidelity, fidelity_pair
from mnsearch.results.frames import study_objectives, trials_frame
from mnsearch.search.storage import load_study, open_existing_storage


def _hours(frame: pd.DataFrame) -> float:
    """Wall hours from the first trial's start to the last trial's end."""
    started = pd.to_datetime(frame["started"]).min()
    ended = (pd.to_datetime(frame["started"]) + pd.to_timedelta(frame["duration_s"], "s")).max()
    return (ended - started).total_seconds() / 3600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", required=True, help="the proxy study")
    parser.add_argument("--storage", required=True)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    storage = open_existing_storage(args.storage)
    pair = fidelity_pair(storage, load_study(storage, args.study))
    if pair is None:
        raise SystemExit(f"study '{args.study}' has no final study in {args.storage}")
    proxy, final = (trials_frame(study) for study in pair)
    objectives = study_objectives(pair[0])
    by_validation = fidelity(proxy, final, objectives)
    by_test = fidelity(proxy, final, objectives, measure="test_accuracy")
    args.out.mkdir(parents=True, exist_ok=True)
    by_validation.pairs.to_csv(args.out / "fidelity.csv", index=False)
    summary = by_validation.summary().rename(columns={"value": "final validation"})
    summary["final test"] = by_test.summary()["value"]
    summary.to_csv(args.out / "fidelity_summary.csv", index=False)
    figure = fidelity_figure(by_validation, f"{args.study}: proxy (grey) and final (blue) "
                                            "validation accuracy")
    write_png(figure, args.out / "fidelity.png", 900, 520)
    shown = by_validation.pairs.assign(
        proxy_accuracy=by_validation.pairs["proxy_accuracy"].map("{:.2%}".format),
        final_accuracy=by_validation.pairs["final_accuracy"].map("{:.2%}".format),
        final_test_accuracy=by_validation.pairs["final_test_accuracy"].map("{:.2%}".format),
        regret=by_validation.pairs["regret"].map("{:.2%}".format))
    print(shown.to_string(index=False))
    print()
    print(summary.to_string(index=False))
    done = final[final["state"] == "COMPLETE"]
    print(f"\nwall: proxy {_hours(proxy):.2f} h, final {_hours(done):.2f} h "
          f"({len(done)} of {len(final)} final trials complete)")


if __name__ == "__main__":
    main()
