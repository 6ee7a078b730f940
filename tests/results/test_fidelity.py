"""Proxy fidelity: rank agreement, regret and fronts against a hand-worked example."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mnsearch.results.fidelity import PAIR_COLUMNS, fidelity
from mnsearch.results.frames import COLUMNS


def _frame(rows):
    """A `trials_frame`-like frame from (number, state, madds, val, test, curve, proxy_trial)."""
    frame = pd.DataFrame([{
        "number": number, "state": state, "madds": madds, "params": madds * 10,
        "val_accuracy": val, "test_accuracy": test, "curve": curve, "proxy_trial": proxy,
        "alpha": 1.0, "resolution": 28, "block_types": "ds", "duplicate_of": None,
        "rejected": None} for number, state, madds, val, test, curve, proxy in rows])
    return frame.reindex(columns=list(dict.fromkeys([*COLUMNS, *frame.columns])))


# Proxy: five complete trials whose accuracy rises with cost, and trial 5 stopped early.
PROXY = _frame([(n, "COMPLETE", n + 1, 0.5 + 0.1 * n, None, [0.5 + 0.1 * n], None)
                for n in range(5)] + [(5, "PRUNED", 6, None, None, [0.55], None)])
# Final: trials 10-15 of proxies 0-5 (out of order, as workers finish them).
FINAL_VAL = [0.60, 0.80, 0.70, 0.90, 0.85, 0.95]
FINAL = _frame([(10 + index, "COMPLETE", proxy + 1, FINAL_VAL[proxy], FINAL_VAL[proxy] - 0.01,
                 None, proxy) for index, proxy in enumerate([3, 0, 5, 1, 4, 2])])


def test_fidelity_matches_the_hand_worked_example():
    result = fidelity(PROXY, FINAL)
    # Final ranks of the five complete proxies: 1 3 2 5 4 -> 2 discordant of 10 pairs.
    assert result.kendall.estimate == pytest.approx(0.6)
    # Rank differences 0 1 -1 1 -1: rho = 1 - 6 * 4 / (5 * 24).
    assert result.spearman.estimate == pytest.approx(0.8)
    proxy, final = [0.5, 0.6, 0.7, 0.8, 0.9], FINAL_VAL[:5]
    assert result.kendall.p_value == pytest.approx(stats.kendalltau(proxy, final).pvalue)
    assert -1 <= result.kendall.low <= 0.6 <= result.kendall.high <= 1
    assert result.spearman.p_value == pytest.approx(stats.spearmanr(proxy, final).pvalue)
    # Regret at costs 1..6: the proxy picks 0, 1, 2, 3, 4, 4 (5 was stopped, unranked).
    assert result.pairs["regret"].tolist() == pytest.approx([0, 0, 0.1, 0, 0.05, 0.1])
    assert (result.mean_regret, result.max_regret) == pytest.approx((0.25 / 6, 0.1))
    assert result.pairs["final_front"].tolist() == [True, True, False, True, False, True]
    assert result.pairs["proxy_front"].tolist() == [True] * 5 + [False]
    assert (result.final_front, result.final_front_on_proxy_front) == (4, 3)
    assert result.stopped_on_final_front == (5,)
    assert result.pairs["proxy_accuracy"].iloc[-1] == 0.55  # its last rung
    assert result.pairs["final_trial"].tolist() == [11, 13, 15, 10, 14, 12]


def test_bootstrap_interval_brackets_the_estimate_and_is_reproducible():
    rng = np.random.default_rng(1)
    proxy_accuracy = np.sort(rng.uniform(0.5, 0.9, 16))
    final_accuracy = proxy_accuracy + rng.normal(0, 0.03, 16)
    proxy = _frame([(n, "COMPLETE", n + 1, a, None, None, None)
                    for n, a in enumerate(proxy_accuracy)])
    final = _frame([(n, "COMPLETE", n + 1, a, a, None, n) for n, a in enumerate(final_accuracy)])
    first, second = fidelity(proxy, final, seed=3), fidelity(proxy, final, seed=3)
    for agreement in (first.kendall, first.spearman):
        assert -1 <= agreement.low <= agreement.estimate <= agreement.high <= 1
    assert first.kendall == second.kendall
    assert first.kendall.estimate == pytest.approx(
        stats.kendalltau(proxy_accuracy, final_accuracy).statistic)


def test_test_accuracy_measure_and_too_few_pairs():
    result = fidelity(PROXY, FINAL, measure="test_accuracy")
    assert result.pairs["final_accuracy"].tolist() == pytest.approx(
        [value - 0.01 for value in FINAL_VAL])
    few = fidelity(PROXY, FINAL[FINAL["proxy_trial"] < 2])
    assert math.isnan(few.kendall.estimate) and len(few.pairs) == 2
    summary = result.summary().set_index("quantity")["value"]
    assert summary["Kendall tau"].startswith("0.600 [") and summary["stopped early, on final "
                                                                    "front"] == "5"


def test_a_final_study_with_nothing_finished_yet_pairs_nothing():
    # A finalize interrupted before its first final model finished writes its results too.
    waiting = FINAL.assign(state="WAITING", val_accuracy=None, test_accuracy=None)
    result = fidelity(PROXY, waiting)
    assert result.pairs.empty and list(result.pairs.columns) == PAIR_COLUMNS
    assert (result.final_front, result.final_front_on_proxy_front) == (0, 0)
    assert result.stopped_on_final_front == () and math.isnan(result.mean_regret)
    assert result.summary().set_index("quantity")["value"]["configurations"] == 0


def test_fidelity_of_real_study_frames_by_both_measures():
    """With a waiting trial, Mult-Adds are floats like the accuracies, and pandas hands out a
    read-only view of them: ranking by test accuracy must copy before it writes (it once
    raised 'assignment destination is read-only')."""
    import optuna

    from mnsearch.results.frames import trials_frame
    from mnsearch.testing.synthetic import synthetic_final_study, synthetic_study

    storage = optuna.storages.InMemoryStorage()
    proxy = synthetic_study(storage, "proxy", 12, seed=3)
    final = synthetic_final_study(storage, proxy)
    final.enqueue_trial({"alpha": 1.0})  # a waiting trial: Mult-Adds NaN, a float column
    for measure in ("val_accuracy", "test_accuracy"):
        result = fidelity(trials_frame(proxy), trials_frame(final), measure=measure)
        assert len(result.pairs) == 12 and -1 <= result.kendall.estimate <= 1
