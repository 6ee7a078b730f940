"""Which proxy setting ranks a space best: several cheap trainings of the same configurations
against one set of final models.

    # an alternative proxy: the same 16 configurations, 4 epochs on 8,000 images (the main
    # job's budget of 32,000 images a configuration, spent on fewer images for longer)
    mnsearch finalize --study paper_v1_grid --top 16 --epochs 4 --subset 8000 \
        --final-study paper_v1_grid-e4s8k \
        --storage experiments/results/fidelity/paper_v1_grid/studies.journal
    python experiments/proxy_settings.py \
        --storage experiments/results/fidelity/paper_v1_grid/studies.journal \
        --proxy paper_v1_grid --final paper_v1_grid-final --alternative paper_v1_grid-e4s8k \
        --out experiments/results/fidelity/paper_v1_grid

`mnsearch finalize` trains any selection of a sweep with another recipe in a linked study, each
trial recording the proxy trial it came from; here that makes an alternative proxy, paired with
the final models by proxy trial. For the sweep's own proxy and each alternative: Kendall τ and
Spearman ρ with bootstrap intervals, regret and front agreement (`mnsearch.results.fidelity`),
and the training images each configuration cost. Writes `proxy_settings.csv`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from mnsearch.results.fidelity import fidelity
from mnsearch.results.frames import study_objectives, trials_frame
from mnsearch.search.record import StudyRecord
from mnsearch.search.storage import load_study, open_existing_storage


def as_proxy(frame: pd.DataFrame) -> pd.DataFrame:
    """An alternative proxy's trials numbered as the sweep's trials they retrain."""
    frame = frame[frame["proxy_trial"].notna()].copy()
    frame["number"] = frame["proxy_trial"].astype(int)
    return frame.drop(columns="proxy_trial")


def images_per_configuration(recipe: dict, training_images: int) -> int:
    """Training images one configuration saw: epochs × (its subset, or the training split)."""
    subset = recipe.get("subset")
    per_epoch = training_images if subset is None else (
        int(subset * training_images) if subset <= 1 else int(subset))
    return int(recipe["epochs"]) * per_epoch


def setting_row(name: str, recipe: dict, proxy: pd.DataFrame, final: pd.DataFrame,
                objectives: tuple[str, ...], training_images: int) -> dict:
    result = fidelity(proxy, final, objectives)
    kendall, spearman = result.kendall, result.spearman
    return {
        "proxy": name, "epochs": recipe["epochs"], "subset": recipe.get("subset"),
        "images_per_configuration": images_per_configuration(recipe, training_images),
        "configurations": len(result.pairs),
        "kendall": kendall.estimate, "kendall_low": kendall.low, "kendall_high": kendall.high,
        "spearman": spearman.estimate, "spearman_low": spearman.low,
        "spearman_high": spearman.high,
        "mean_regret": result.mean_regret, "max_regret": result.max_regret,
        "final_front_on_proxy_front": f"{result.final_front_on_proxy_front} of "
                                      f"{result.final_front}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", required=True)
    parser.add_argument("--proxy", required=True, help="the sweep (the proxy it ran)")
    parser.add_argument("--final", required=True, help="its final study")
    parser.add_argument("--alternative", action="append", default=[],
                        help="a study of the same configurations at another proxy setting")
    parser.add_argument("--training-images", type=int, default=54_000,
                        help="images in the training split (Fashion-MNIST: 54,000)")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    storage = open_existing_storage(args.storage)
    sweep, final_study = load_study(storage, args.proxy), load_study(storage, args.final)
    objectives = tuple(study_objectives(sweep))
    final = trials_frame(final_study)
    rows = [setting_row(args.proxy, _first_recipe(sweep), trials_frame(sweep), final,
                        objectives, args.training_images)]
    for name in args.alternative:
        study = load_study(storage, name)
        rows.append(setting_row(name, StudyRecord.of(study).recipe or _first_recipe(study),
                                as_proxy(trials_frame(study)), final, objectives,
                                args.training_images))
    table = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "proxy_settings.csv", index=False)
    print(table.to_string(index=False, float_format=lambda value: f"{value:.3f}"))


def _first_recipe(study) -> dict:
    """The recipe a study's trials recorded (every trial of a study shares it)."""
    for trial in study.get_trials(deepcopy=False):
        if "recipe" in trial.user_attrs:
            return trial.user_attrs["recipe"]
    raise SystemExit(f"study '{study.study_name}' records no recipe")


if __name__ == "__main__":
    main()
