"""Draw docs/images/paper-v1-grid.png from the committed sweep (no training, no network).

The V1 paper's Figure 4 for the main job's grid (16 models, α × ρ, one epoch on 32,000
Fashion-MNIST images, the recipe of search_spaces/paper_v1_grid.yaml), from the committed run
experiments/results/main_job_recipe/e1-s32000-b64-trials.csv.
plotly draws it; headless Debian chromium renders it to PNG (`mnsearch.plots.image`).
Run from the repository root:

    .venv/bin/python docs/images/make_paper_v1_grid.py
"""

from pathlib import Path

import pandas as pd

from mnsearch.plots.image import write_png
from mnsearch.plots.study import accuracy_vs_madds
from mnsearch.results import COLUMNS

ROOT = Path(__file__).resolve().parents[2]
TRIALS = ROOT / "experiments/results/main_job_recipe/e1-s32000-b64-trials.csv"
OUT = ROOT / "docs/images/paper-v1-grid.png"
WIDTH, HEIGHT = 900, 520


def main() -> None:
    frame = pd.read_csv(TRIALS)
    for column in COLUMNS:  # the committed CSV predates some of trials_frame's columns
        if column not in frame:
            frame[column] = None
    figure = accuracy_vs_madds(
        frame, title="MobileNet V1, α × ρ grid on Fashion-MNIST (1 epoch, 32,000 images)")
    figure.update_layout(margin={"l": 70, "r": 20, "t": 60, "b": 60}, yaxis_tickformat=".0%")
    write_png(figure, OUT, WIDTH, HEIGHT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
