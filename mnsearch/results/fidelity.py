"""How far a proxy front can be trusted: proxy (sweep) against final (`mnsearch finalize`).

A sweep ranks architectures at low fidelity; `mnsearch finalize` trains the chosen ones for
real in a linked study whose trials name their proxy trial. `fidelity` pairs them and measures:

- rank agreement: Kendall's τ and Spearman's ρ between proxy and final accuracy (SciPy), with
  paired bootstrap confidence intervals (`scipy.stats.bootstrap`, percentile method), over the
  configurations whose proxy ran to its end (a proxy stopped early is at a lower fidelity);
- regret: at each final configuration's cost, the best final accuracy among the finalized
  configurations that cost no more, minus the final accuracy of the one the proxy would pick
  there (the most accurate proxy among them): what trusting the proxy front loses;
- which final-front members were on the proxy front, and whether a configuration the rung rule
  stopped early would have been on the final front.

Accuracy is validation accuracy by default (what a search selects on); `measure=
"test_accuracy"` ranks by the final models' test accuracy instead. Costs are the studies' cost
objectives (Mult-Adds, parameters, latency), identical in both studies by construction.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd
from scipy import stats

from mnsearch.pareto import pareto_mask
from mnsearch.results.frames import completed, objective_columns, stopped_early
from mnsearch.search.record import COST_OBJECTIVES, OBJECTIVES, StudyRecord
from mnsearch.search.storage import load_study

BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95
MIN_PAIRS = 3  # fewer points have no rank correlation worth a number

PAIR_COLUMNS = ["proxy_trial", "final_trial", "alpha", "resolution", "block_types", "madds",
                "params", "proxy_accuracy", "proxy_stopped", "final_accuracy",
                "final_test_accuracy", "proxy_front", "final_front", "regret"]


@dataclass(frozen=True)
class Agreement:
    """A rank correlation with its bootstrap confidence interval (NaN when undefined)."""

    estimate: float
    low: float
    high: float
    p_value: float


@dataclass(frozen=True)
class Fidelity:
    """Proxy against final, per configuration (`pairs`, columns `PAIR_COLUMNS`) and summed up."""

    pairs: pd.DataFrame
    measure: str
    kendall: Agreement
    spearman: Agreement
    mean_regret: float
    max_regret: float
    final_front: int  # final-front members
    final_front_on_proxy_front: int  # of them, on the proxy front too
    stopped_on_final_front: tuple[int, ...]  # proxy trials stopped early, on the final front

    def summary(self) -> pd.DataFrame:
        """The headline numbers as a two-column table (for reports and CSV files)."""
        rows = [("configurations", len(self.pairs)), ("accuracy measure", self.measure)]
        for name, agreement in (("Kendall tau", self.kendall), ("Spearman rho", self.spearman)):
            rows.append((name, f"{agreement.estimate:.3f} [{agreement.low:.3f}, "
                               f"{agreement.high:.3f}] (p = {agreement.p_value:.2g})"))
        rows += [("mean regret", f"{self.mean_regret:.2%}"),
                 ("max regret", f"{self.max_regret:.2%}"),
                 ("final front on proxy front",
                  f"{self.final_front_on_proxy_front} of {self.final_front}"),
                 ("stopped early, on final front",
                  ", ".join(map(str, self.stopped_on_final_front)) or "none")]
        return pd.DataFrame(rows, columns=["quantity", "value"])


def fidelity(proxy: pd.DataFrame, final: pd.DataFrame,
             objectives: Sequence[str] = ("accuracy", "madds"),
             measure: str = "val_accuracy", seed: int = 0) -> Fidelity:
    """Pair a proxy study's trials with its final study's (both as `trials_frame` frames)."""
    cost_columns = [OBJECTIVES[name].field for name in objectives if name in COST_OBJECTIVES]
    pairs = _pairs(proxy, final, objectives, measure)
    pairs["regret"] = _regret(pairs, cost_columns)
    agreed = pairs[~pairs["proxy_stopped"]]
    on_final = pairs[pairs["final_front"]]
    return Fidelity(
        pairs=pairs[PAIR_COLUMNS].reset_index(drop=True), measure=measure,
        kendall=_agreement(agreed, lambda x, y: stats.kendalltau(x, y), seed),
        spearman=_agreement(agreed, lambda x, y: stats.spearmanr(x, y), seed),
        mean_regret=float(pairs["regret"].mean()) if len(pairs) else float("nan"),
        max_regret=float(pairs["regret"].max()) if len(pairs) else float("nan"),
        final_front=len(on_final), final_front_on_proxy_front=int(on_final["proxy_front"].sum()),
        stopped_on_final_front=tuple(int(n) for n in on_final[on_final["proxy_stopped"]]
                                     ["proxy_trial"]))


def _pairs(proxy: pd.DataFrame, final: pd.DataFrame, objectives: Sequence[str],
           measure: str) -> pd.DataFrame:
    """One row per finalized configuration: its proxy's and its final trial's accuracies."""
    columns, directions = objective_columns(objectives)
    cost_fields = {OBJECTIVES[name].field for name in objectives if name in COST_OBJECTIVES}
    done = completed(proxy)
    proxy_front = set(done[pareto_mask(done[columns].to_numpy(dtype=float), directions)]
                      ["number"]) if len(done) else set()
    accuracy = pd.concat([done, stopped_early(proxy)]).set_index("number")["val_accuracy"]
    finals = completed(final)
    finals = finals[finals["proxy_trial"].notna()].drop_duplicates("proxy_trial")
    finals = finals[finals["proxy_trial"].astype(int).isin(accuracy.index)]
    final_values = finals[columns].to_numpy(dtype=float, copy=True)  # written below
    if measure == "test_accuracy" and "val_accuracy" in columns:  # rank by the measure
        final_values[:, list(columns).index("val_accuracy")] = finals["test_accuracy"]
    pairs = pd.DataFrame({
        "proxy_trial": finals["proxy_trial"].astype(int).to_numpy(),
        "final_trial": finals["number"].astype(int).to_numpy(),
        **{name: finals[name].to_numpy() for name in ("alpha", "resolution", "block_types",
                                                      "madds", "params")},
        "final_accuracy": finals[measure].astype(float).to_numpy(),
        "final_test_accuracy": finals["test_accuracy"].astype(float).to_numpy(),
        # An empty list would be an object column, which pandas reads as column labels
        # rather than a row mask (a finalize stopped before its first model finished).
        "final_front": (pareto_mask(final_values, directions) if len(finals)
                        else np.zeros(0, dtype=bool)),
        **{column: finals[column].to_numpy() for column in columns
           if column not in ("madds", "params") and column in cost_fields},
    })
    pairs["proxy_accuracy"] = pairs["proxy_trial"].map(accuracy).astype(float)
    pairs["proxy_stopped"] = ~pairs["proxy_trial"].isin(done["number"])
    pairs["proxy_front"] = pairs["proxy_trial"].isin(proxy_front)
    return pairs.sort_values(["madds", "proxy_trial"]).reset_index(drop=True)


def _regret(pairs: pd.DataFrame, cost_columns: Sequence[str]) -> pd.Series:
    """At each configuration's costs: best final accuracy among those costing no more (every
    cost), minus the final accuracy of the proxy's pick among them."""
    costs = pairs[list(cost_columns)].to_numpy(dtype=float)
    regret = []
    for row in range(len(pairs)):
        within = pairs[(costs <= costs[row]).all(axis=1)]
        ranked = within[~within["proxy_stopped"]]
        if ranked.empty:
            regret.append(np.nan)
            continue
        pick = ranked.sort_values(["proxy_accuracy", "madds"], ascending=[False, True]).iloc[0]
        regret.append(float(within["final_accuracy"].max() - pick["final_accuracy"]))
    return pd.Series(regret, index=pairs.index, dtype=float)


def _agreement(pairs: pd.DataFrame, correlation: Callable[[np.ndarray, np.ndarray], Any],
               seed: int) -> Agreement:
    """`correlation(proxy, final)` with a paired bootstrap percentile interval; NaN below
    `MIN_PAIRS`. Resamples that draw one configuration only (a constant input, no rank
    correlation) are left out of the percentiles rather than making the interval NaN."""
    x = pairs["proxy_accuracy"].to_numpy(dtype=float)
    y = pairs["final_accuracy"].to_numpy(dtype=float)
    nan = float("nan")
    if len(x) < MIN_PAIRS:
        return Agreement(nan, nan, nan, nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns about each constant resample
        result = correlation(x, y)
        resampled = stats.bootstrap(
            (x, y), lambda a, b: correlation(a, b).statistic, paired=True, vectorized=False,
            n_resamples=BOOTSTRAP_RESAMPLES, confidence_level=CONFIDENCE, method="percentile",
            random_state=np.random.default_rng(seed)).bootstrap_distribution
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.nanpercentile(resampled, [tail, 100 - tail])
    return Agreement(float(result.statistic), float(low), float(high), float(result.pvalue))


def fidelity_pair(storage: optuna.storages.BaseStorage,
                  study: optuna.Study) -> tuple[optuna.Study, optuna.Study] | None:
    """(proxy, final) when `study` is either: a final study (its recorded proxy), or a proxy
    with a final study in the same storage (`NAME-final` first, else any recording it)."""
    record = StudyRecord.of(study)
    names = {frozen.study_name: frozen for frozen in storage.get_all_studies()}
    if record.proxy_study is not None:
        if record.proxy_study not in names:
            return None
        return load_study(storage, record.proxy_study), study
    finals = sorted((name for name, frozen in names.items()
                     if frozen.user_attrs.get("proxy_study") == study.study_name),
                    key=lambda name: (name != f"{study.study_name}-final", name))
    return (study, load_study(storage, finals[0])) if finals else None
