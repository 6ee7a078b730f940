"""A study's shareable report: one self-contained HTML file that opens offline.

plotly.js is embedded once (in the first figure); the other figures reuse it. The file holds
the Pareto front over the dominated cloud, the V1 paper's Figures 4 and 5, the hypervolume
history, the cost breakdown of the most accurate front model, and the Pareto table; with
several studies, a comparison table and their fronts overlaid.

A study of more than `density_above` trials (`mnsearch.plots.aggregate.DENSITY_ABOVE`) gets
its clouds as densities and Figures 4 and 5 as binned medians, its fronts exact: 100,000 trials
make a 5 MB file in seconds instead of 29 MB of points that no browser opens quickly.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import optuna
import pandas as pd
import plotly.graph_objects as go

from mnsearch.plots.aggregate import DENSITY_ABOVE
from mnsearch.plots.fidelity import fidelity_figure
from mnsearch.plots.study import (
    Overlay,
    accuracy_vs_madds,
    accuracy_vs_params,
    hypervolume_figure,
    pareto_figure,
    study_overlay,
)
from mnsearch.plots.trial import cost_breakdown_figure, trial_spec
from mnsearch.results.fidelity import fidelity
from mnsearch.results.frames import (
    compare_studies,
    completed,
    cost_references,
    hypervolume_history,
    pareto_frame,
    study_hypervolume,
    study_objectives,
    time_accounting,
    trials_frame,
)
from mnsearch.search.record import StudyRecord

PARETO_COLUMNS = ["study", "number", "alpha", "resolution", "rho", "block_types", "madds",
                  "params", "latency_ms", "val_accuracy", "test_accuracy", "train_seconds"]
STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;
text-align:right}th{background:#f3f3f3}.note{color:#555;font-size:13px}"""


def study_report(studies: Sequence[optuna.Study], references: Sequence[Overlay] = (),
                 fidelity_pair: tuple[optuna.Study, optuna.Study] | None = None,
                 density_above: int = DENSITY_ABOVE) -> str:
    """The report of `studies` (the first is the main one) as one HTML string; with
    `fidelity_pair` (a proxy study and its final study), the proxy-fidelity section too."""
    frames = [trials_frame(study) for study in studies]
    objectives = study_objectives(studies[0])
    attrs = StudyRecord.of(studies[0])
    subtitle = (f"dataset {attrs.dataset or '?'} · space {attrs.space or '?'} · "
                f"objectives {', '.join(objectives)}")
    if attrs.proxy_study:
        subtitle += f" · final study of {attrs.proxy_study}"
    if attrs.simulated:
        subtitle = f"SIMULATED (mnsearch sweep --simulate: synthetic accuracies) · {subtitle}"
    pair = None
    if fidelity_pair is not None:
        pair = (trials_frame(fidelity_pair[0]), trials_frame(fidelity_pair[1]))
    return report_html(frames, objectives, subtitle, list(references), pair, density_above)


def report_html(frames: Sequence[pd.DataFrame], objectives: Sequence[str], subtitle: str = "",
                references: Sequence[Overlay] = (),
                fidelity_frames: tuple[pd.DataFrame, pd.DataFrame] | None = None,
                density_above: int = DENSITY_ABOVE) -> str:
    """The report as one HTML string (pure: no storage, no files)."""
    main = frames[0]
    name = str(main["study"].iloc[0]) if len(main) else "empty study"
    overlays = [study_overlay(frame) for frame in frames[1:] if len(completed(frame))]
    overlays += list(references)
    label = " (SIMULATED)" if subtitle.startswith("SIMULATED") else ""
    sections = [f"<h1>{html.escape(name)}{label}</h1><p class=note>{html.escape(subtitle)}</p>",
                _summary(main, objectives)]
    if len(frames) > 1:
        table = compare_studies(pd.concat(frames, ignore_index=True), objectives)
        sections.append("<h2>Studies compared</h2>" + _table(table))
    figures = _figures(main, objectives, overlays, density_above)
    sections += [_figure_html(figure, first=index == 0) for index, figure in enumerate(figures)]
    if fidelity_frames is not None:
        sections.append(fidelity_section(*fidelity_frames, objectives, first=not figures))
    front = pareto_frame(main, objectives)
    sections.append(f"<h2>Pareto front ({len(front)} trials)</h2>"
                    + _table(front[[c for c in PARETO_COLUMNS if c in front]]))
    sections.append(_time_section(main))
    body = "\n".join(sections)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>"
            f"{html.escape(name)}: mnsearch report</title><style>{STYLE}</style></head>"
            f"<body>{body}</body></html>")


def fidelity_section(proxy: pd.DataFrame, final: pd.DataFrame, objectives: Sequence[str],
                     first: bool = False) -> str:
    """How far the proxy front can be trusted: the figure, the headline numbers ranked by
    the final models' validation and test accuracy, and every configuration's pair."""
    by_validation = fidelity(proxy, final, objectives)
    by_test = fidelity(proxy, final, objectives, measure="test_accuracy")
    proxy_name = str(proxy["study"].iloc[0]) if len(proxy) else "proxy"
    final_name = str(final["study"].iloc[0]) if len(final) else "final"
    title = f"Proxy fidelity: {proxy_name} → {final_name}"
    if by_validation.pairs.empty:
        return f"<h2>{html.escape(title)}</h2><p>No final trial has completed yet.</p>"
    headline = by_validation.summary().rename(columns={"value": "final validation"})
    headline["final test"] = by_test.summary()["value"]
    figure = fidelity_figure(by_validation, "Proxy (grey) and final (blue) accuracy of each "
                                            "configuration")
    note = ("Rank correlations over the configurations whose proxy ran to its end, with 95% "
            "paired-bootstrap intervals; regret: at each configuration's cost, the best final "
            "accuracy among those costing no more minus the final accuracy of the one the "
            "proxy ranks first there.")
    return (f"<h2>{html.escape(title)}</h2><p class=note>{html.escape(note)}</p>"
            + _table(headline) + _figure_html(figure, first=first)
            + _table(by_validation.pairs))


def _summary(frame: pd.DataFrame, objectives: Sequence[str]) -> str:
    counts = frame["state"].value_counts().to_dict() if len(frame) else {}
    states = ", ".join(f"{count} {state.lower()}" for state, count in sorted(counts.items()))
    if not len(completed(frame)):
        return f"<p>No completed trials yet ({states or 'no trials'}).</p>"
    references = cost_references(frame, objectives)
    volume = study_hypervolume(frame, objectives, references)
    reference = ", ".join(f"{key} {value:,.6g}" for key, value in references.items())
    return (f"<p>{len(frame)} trials ({states}); hypervolume <b>{volume:.4f}</b> "
            f"<span class=note>(losses 1 − accuracy and cost / reference, reference costs: "
            f"{html.escape(reference)}; reference point (1, …, 1))</span></p>")


def _time_section(frame: pd.DataFrame) -> str:
    """Where the trials' time went, by phase; `train` is steady-state training steps."""
    table = time_accounting(frame)
    if not len(frame) or table["seconds"].sum() == 0:
        return ""
    shown = table.assign(share=(100 * table["share"]).map(lambda value: f"{value:.1f}%"))
    steady = table.set_index("phase").loc["train", "share"]
    return (f"<h2>Where the time went</h2><p class=note>{steady:.0%} of the trials' time was "
            "steady-state training steps (compilation, evaluation and set-up are separate)"
            "</p>" + _table(shown))


def _figures(frame: pd.DataFrame, objectives: Sequence[str], overlays: list[Overlay],
             density_above: int) -> list[go.Figure]:
    if not len(completed(frame)):
        return []
    figures = [pareto_figure(frame, tuple(objectives), overlays=overlays,
                             density_above=density_above),
               accuracy_vs_madds(frame, "Accuracy vs Mult-Adds (V1 paper Figure 4)", overlays,
                                 density_above),
               accuracy_vs_params(frame, "Accuracy vs parameters (V1 paper Figure 5)",
                                  overlays, density_above),
               hypervolume_figure(hypervolume_history(frame, objectives),
                                  steps_above=density_above)]
    front = pareto_frame(frame, objectives)
    best = front.sort_values("val_accuracy").iloc[-1] if len(front) else None
    spec = trial_spec(best["spec"]) if best is not None else None
    if spec is not None:
        figures.append(cost_breakdown_figure(
            spec, f"Cost by layer type of trial {best['number']} (most accurate on the front)"))
    return figures


def _figure_html(figure: go.Figure, first: bool) -> str:
    """A figure's div; only the first embeds plotly.js (inline: the file works offline)."""
    return figure.to_html(full_html=False, include_plotlyjs=bool(first),
                          config={"displaylogo": False})


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, escape=True, na_rep="", float_format=lambda v: f"{v:.4g}")
