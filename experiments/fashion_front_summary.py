"""Issue #15's record: the Fashion-MNIST finals against the published points and the targets.

    .venv/bin/python experiments/fashion_front_summary.py [--out experiments/results/fashion_front]

Reads the journal of `experiments/fashion_front.sh` (the proxy sweeps `fashion_small`,
`fashion_tiny`, `fashion_mid` and `fashion_wide`, their fronts' finals `fashion_*-final-noerasing`,
the longer schedules `fashion_tiny|mid|wide-final-EPOCHS[-erasing]`, and `fashion_small-final` with
random erasing) and the `evaluate-test.json` of every exported final (test accuracy recomputed by
`mnsearch evaluate` from the committed weights). Writes `finals.csv` (one row per final model: proxy
trial, architecture, parameters, Mult-Adds, epochs, validation and test accuracy, training hours),
`targets.csv` (per target: the best model under the size by validation accuracy, its test accuracy
and whether it meets the target), `front.html` and `front.png` (also copied to
docs/images/fashion-front.png; test accuracy against parameters and against Mult-Adds, the proxy
front's validation accuracy and the published points of `published.csv`), `schedules.html` and
`schedules.png` (also copied to docs/images/fashion-schedules.png; the validation curves of each
model trained under more than one schedule or recipe), and prints the tables with the hours each
step took.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pandas as pd
from plotly.subplots import make_subplots

from mnsearch.plots.image import write_png
from mnsearch.plots.study import read_reference_points
from mnsearch.results.frames import completed, pareto_frame, trials_frame
from mnsearch.search.storage import StudyNotFoundError, load_study, open_existing_storage

TARGETS = [("< 100K", 100_000, 0.926, False), ("<= 300K", 300_000, 0.940, True),
           ("<= 1M", 1_000_000, 0.945, True)]  # label, params, test accuracy, inclusive
# final study: its label (the proxy sweep's space, the recipe) and colour in the figure
FINALS = {"fashion_small-final": ("fashion_small, erasing 0.5", "darkorange"),
          "fashion_small-final-noerasing": ("fashion_small", "seagreen"),
          "fashion_tiny-final-noerasing": ("fashion_tiny (per-stage widths)", "royalblue"),
          "fashion_mid-final-noerasing": ("fashion_mid (per-stage widths)", "darkgoldenrod")}
# the fronts' final studies (erasing was measured worse) and the prefix of their exported
# folders (`fashion_front.sh export`, `export-tiny`, `export-mid`); the targets choose among them
FRONTS = {"fashion_small-final-noerasing": "final-trial-",
          "fashion_tiny-final-noerasing": "tiny-final-trial-",
          "fashion_mid-final-noerasing": "mid-final-trial-"}
# longer schedules of the per-stage-width fronts' models (`fashion_front.sh long SPACE TRIALS
# EPOCHS`, `long-erasing ...`): final study fashion_SPACE-final-EPOCHS[-erasing], exported to
# SPACE-EPOCHS[-erasing]-trial-N/
LONG_FINAL = re.compile(r"fashion_(tiny|mid|wide)-final-([0-9]+)(-erasing)?")
LONG_COLOURS = {("tiny", False): "navy", ("mid", False): "saddlebrown",
                ("wide", False): "darkslategray", ("tiny", True): "mediumvioletred",
                ("mid", True): "crimson", ("wide", True): "darkviolet"}
PROXIES = {"fashion_small": "lightgray", "fashion_tiny": "lightsteelblue", "fashion_mid": "wheat",
           "fashion_wide": "thistle"}
SYMBOLS = ("diamond", "star", "star-diamond", "triangle-up", "square", "pentagon")


def final_styles(names: set[str]) -> dict[str, tuple[str, str]]:
    """The final studies to read, each with its label and colour: `FINALS`, then the long
    schedules found (coloured by their space)."""
    styles = dict(FINALS)
    for name in sorted(names):
        if match := LONG_FINAL.fullmatch(name):
            erasing = match[3] is not None
            recipe = ", erasing 0.5" if erasing else ""
            styles[name] = (f"fashion_{match[1]}, {match[2]} epochs{recipe}",
                            LONG_COLOURS[match[1], erasing])
    return styles


def front_prefix(study: str) -> str | None:
    """The exported folders' prefix of a final study the targets choose among, else None."""
    if match := LONG_FINAL.fullmatch(study):
        return f"{match[1]}-{match[2]}{match[3] or ''}-trial-"
    return FRONTS.get(study)


def finals(storage: object, out: Path, styles: dict[str, tuple[str, str]]) -> pd.DataFrame:
    """Every finished final model with its recomputed test accuracy (None until exported)."""
    rows = []
    for name, (label, _) in styles.items():
        try:
            frame = trials_frame(load_study(storage, name))
        except StudyNotFoundError:  # a final study not started yet
            continue
        for _, trial in completed(frame).iterrows():
            evaluated = _evaluated(out, name, int(trial["number"]))
            rows.append({
                "final_study": name, "label": label, "trial": int(trial["number"]),
                "proxy_trial": trial.get("proxy_trial"), "blocks": trial.get("blocks"),
                "alpha": trial["alpha"], "params": int(trial["params"]),
                "madds": int(trial["madds"]), "epochs": int(trial["epochs_done"]),
                "val_accuracy": trial["val_accuracy"],
                "test_accuracy_at_training": trial["test_accuracy"],
                "test_accuracy_evaluated": evaluated,
                "train_hours": trial["train_seconds"] / 3600, "curve": trial.get("curve")})
    return pd.DataFrame(rows)


def _evaluated(out: Path, study: str, trial: int) -> float | None:
    """The test accuracy `mnsearch evaluate` recomputed on the exported folder, if exported."""
    prefix = front_prefix(study)
    if prefix is None:
        return None
    result = out / f"{prefix}{trial}" / "evaluate-test.json"
    if not result.exists():
        return None
    return float(json.loads(result.read_text())["accuracy"])


def targets(table: pd.DataFrame) -> pd.DataFrame:
    """Per target, the final model chosen by validation accuracy among those under the size
    (selection never looks at the test split)."""
    rows = []
    pool = table[table["final_study"].map(front_prefix).notna()] if len(table) else table
    for label, size, goal, inclusive in TARGETS:
        fits = pool[pool["params"] <= size] if inclusive else pool[pool["params"] < size]
        if not len(fits):
            rows.append({"target": label, "goal": goal, "trial": None, "met": False})
            continue
        best = fits.sort_values("val_accuracy").iloc[-1]
        test = best["test_accuracy_evaluated"]
        test = best["test_accuracy_at_training"] if pd.isna(test) else test
        rows.append({"target": label, "goal": goal,
                     "final_study": best["final_study"], "trial": int(best["trial"]),
                     "params": int(best["params"]), "madds": int(best["madds"]),
                     "val_accuracy": best["val_accuracy"], "test_accuracy": test,
                     "evaluated": not pd.isna(best["test_accuracy_evaluated"]),
                     "met": bool(test >= goal)})
    return pd.DataFrame(rows)


def figure(table: pd.DataFrame, proxies: dict[str, pd.DataFrame], published: Path,
           styles: dict[str, tuple[str, str]]):
    """Test accuracy of the finals against parameters and Mult-Adds, over the proxy fronts
    (validation accuracy at 4 epochs on 10,000 images) and the published points."""
    reference = read_reference_points(published)
    plot = make_subplots(1, 2, subplot_titles=("against parameters", "against Mult-Adds"),
                         shared_yaxes=True)
    fronts = {name: pareto_frame(proxy, ("accuracy", "params"))
              for name, proxy in proxies.items()}
    for column, axis in (("params", 1), ("madds", 2)):
        for name, front in fronts.items():
            plot.add_scatter(x=front[column] / 1e6, y=front["val_accuracy"], mode="markers",
                             name=f"{name} proxy front (validation, 4 epochs x 10k)",
                             marker={"color": PROXIES[name], "size": 8}, row=1, col=axis,
                             showlegend=axis == 1)
        for study, group in table.groupby("final_study", sort=False) if len(table) else []:
            label, colour = styles[study]
            accuracy = group["test_accuracy_evaluated"].fillna(group["test_accuracy_at_training"])
            plot.add_scatter(x=group[column] / 1e6, y=accuracy, mode="markers+text",
                             name=f"final, {label} (test)", row=1, col=axis,
                             text=[f"#{trial}" for trial in group["trial"]],
                             textposition="bottom center",
                             marker={"size": 11, "color": colour},
                             showlegend=axis == 1)
        # One legend entry per published network: their labels collide when written in place.
        values = reference.params if column == "params" else reference.x
        for index, value in enumerate(values or []):
            if value == value:  # a point without this cost (papers give no Mult-Adds) is left out
                plot.add_scatter(x=[value], y=[reference.accuracy[index]], row=1, col=axis,
                                 mode="markers", name=f"{reference.text[index]} (published, "
                                 f"{value:.2g}M, {reference.accuracy[index]:.2%})",
                                 marker={"symbol": SYMBOLS[index % len(SYMBOLS)], "size": 11,
                                         "color": "firebrick"}, showlegend=axis == 1)
        plot.update_xaxes(type="log", title=f"{column} (millions)", row=1, col=axis)
    plot.update_yaxes(title="accuracy", row=1, col=1)
    plot.update_layout(title="Fashion-MNIST: mnsearch finals against published networks",
                       template="plotly_white")
    return plot


def schedules(table: pd.DataFrame, styles: dict[str, tuple[str, str]]):
    """Validation accuracy per epoch of every front model trained more than once (other
    lengths, random erasing): what a longer cosine schedule buys (the short one anneals first,
    so it leads for a while) and what erasing costs early on. None while no model has two."""
    pool = table[table["final_study"].map(front_prefix).notna()] if len(table) else table
    if not len(pool):
        return None
    space = pool["final_study"].str.extract(r"fashion_([a-z]+)-", expand=False)
    model = space + " proxy #" + pool["proxy_trial"].astype(int).astype(str)
    pool = pool.assign(model=model)[model.map(model.value_counts()) > 1]
    if not len(pool):
        return None
    plot = make_subplots(1, 1)
    for (name, study), row in pool.set_index(["model", "final_study"]).iterrows():
        curve = row["curve"] or []
        recipe = ", erasing 0.5" if study.endswith("-erasing") else ""
        plot.add_scatter(x=list(range(1, len(curve) + 1)), y=curve, mode="lines",
                         name=f"{name} ({row['params']:,} params), {row['epochs']} epochs"
                         f"{recipe}: {row['val_accuracy']:.2%}",
                         line={"color": styles[study][1],
                               "dash": "solid" if study in FRONTS
                               else "dot" if study.endswith("-erasing") else "dash"})
    plot.update_xaxes(title="epoch")
    plot.update_yaxes(title="validation accuracy (6,000 images)", range=[0.88, 0.96])
    plot.update_layout(title="Fashion-MNIST: the same models under longer cosine schedules "
                       "and random erasing", template="plotly_white")
    return plot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("experiments/results/fashion_front"))
    parser.add_argument("--docs-image", type=Path, default=Path("docs/images/fashion-front.png"),
                        help="a copy of front.png for docs/fashion-front.md")
    args = parser.parse_args()
    storage = open_existing_storage(str(args.out / "studies.journal"))
    names = {study.study_name for study in storage.get_all_studies()}
    styles = final_styles(names)
    table = finals(storage, args.out, styles)
    table.drop(columns=["curve"]).to_csv(args.out / "finals.csv", index=False)
    goals = targets(table)
    goals.to_csv(args.out / "targets.csv", index=False)
    proxies = {name: trials_frame(load_study(storage, name)) for name in PROXIES if name in names}
    plot = figure(table, proxies, args.out / "published.csv", styles)
    plot.write_html(args.out / "front.html", include_plotlyjs=True)
    write_png(plot, args.out / "front.png", 1100, 520)
    args.docs_image.write_bytes((args.out / "front.png").read_bytes())
    lengths = schedules(table, styles)
    if lengths is not None:
        lengths.write_html(args.out / "schedules.html", include_plotlyjs=True)
        write_png(lengths, args.out / "schedules.png", 1100, 520)
        (args.docs_image.parent / "fashion-schedules.png").write_bytes(
            (args.out / "schedules.png").read_bytes())
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.drop(columns=["blocks", "curve"]).to_string(index=False))
        print(goals.to_string(index=False))
    print(f"training hours of the finals: {table['train_hours'].sum():.2f}" if len(table)
          else "no final finished yet")


if __name__ == "__main__":
    main()
