"""Does optimising the int8 model's accuracy change the front? Float and int8 fronts of one
study (a sweep with `objectives: [int8_accuracy, madds]` records both accuracies).

    mnsearch sweep search_spaces/int8_blocks.yaml --storage S --no-early-stopping
    python experiments/int8_objective.py --study int8_blocks --storage S --out DIR

Prints, per configuration, the float and int8 validation accuracy and whether it is on each
front (accuracy against Mult-Adds), then the hypervolume of both fronts and the members they
do not share; writes the table as CSV and the figure (both fronts) as HTML and PNG.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import optuna
import plotly.graph_objects as go

from mnsearch.pareto import pareto_mask
from mnsearch.plots.image import write_png
from mnsearch.results.frames import completed, study_hypervolume, trials_frame
from mnsearch.search.storage import open_existing_storage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", required=True)
    parser.add_argument("--storage", required=True)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    study = optuna.load_study(study_name=args.study,
                              storage=open_existing_storage(args.storage))
    frame = completed(trials_frame(study)).copy()
    for name, column in (("float", "val_accuracy"), ("int8", "int8_accuracy")):
        values = frame[[column, "madds"]].to_numpy(dtype=float)
        frame[f"{name}_front"] = pareto_mask(values, ["maximize", "minimize"])
    frame["drop"] = frame["val_accuracy"] - frame["int8_accuracy"]
    frame["block"] = frame.get("param_block", frame["block_types"])  # v2 and v3 are both ir
    columns = ["number", "block", "alpha", "resolution", "madds", "val_accuracy",
               "int8_accuracy", "drop", "float_front", "int8_front"]
    table = frame[columns].sort_values("madds")
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "int8_objective.csv", index=False)
    print(table.to_string(index=False, float_format=lambda value: f"{value:.4f}"))
    volumes = {name: study_hypervolume(frame.assign(val_accuracy=frame[column]))
               for name, column in (("float", "val_accuracy"), ("int8", "int8_accuracy"))}
    only_float = table[table["float_front"] & ~table["int8_front"]]["number"].tolist()
    only_int8 = table[table["int8_front"] & ~table["float_front"]]["number"].tolist()
    print(f"\ndrop: mean {table['drop'].mean():+.4f}, max {table['drop'].max():+.4f} "
          f"(trial {int(table.loc[table['drop'].idxmax(), 'number'])}); by block type:")
    print(table.groupby("block")["drop"].agg(["mean", "max"]).to_string())
    print(f"hypervolume: float front {volumes['float']:.4f}, int8 front {volumes['int8']:.4f}")
    print(f"front members: float {int(table['float_front'].sum())}, int8 "
          f"{int(table['int8_front'].sum())}; only on the float front: {only_float}; only on "
          f"the int8 front: {only_int8}")
    figure = go.Figure()
    for name, column, color in (("float", "val_accuracy", "#9e9e9e"),
                                ("int8", "int8_accuracy", "#d62728")):
        figure.add_trace(go.Scatter(x=table["madds"] / 1e6, y=table[column], mode="markers",
                                    name=f"{name} trials", marker={"color": color},
                                    text=table["block"]))
        front = table[table[f"{name}_front"]]
        figure.add_trace(go.Scatter(x=front["madds"] / 1e6, y=front[column], mode="lines",
                                    name=f"{name} front", line={"color": color,
                                                                "shape": "hv"}))
    figure.update_layout(title=f"{args.study}: float and int8 validation accuracy",
                         xaxis={"type": "log", "title": "Million Mult-Adds"},
                         yaxis={"title": "validation accuracy", "tickformat": ".0%"},
                         template="plotly_white")
    figure.write_html(args.out / "int8_objective.html", include_plotlyjs=True)
    write_png(figure, args.out / "int8_objective.png", 900, 500)


if __name__ == "__main__":
    main()
