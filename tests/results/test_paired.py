"""The paired comparison of two models on the same images (McNemar's exact test).

The p-values are checked against the binomial sums written out by hand: under "equally
accurate" each of the n images the models disagree on goes to A with probability 1/2, and the
two-sided p-value is twice the smaller tail (capped at 1).
"""

from math import comb

import numpy as np
import pytest

from mnsearch.results.paired import paired_comparison


def _vectors(both: int, a_only: int, b_only: int, neither: int):
    a = [True] * both + [True] * a_only + [False] * b_only + [False] * neither
    b = [True] * both + [False] * a_only + [True] * b_only + [False] * neither
    return np.array(a), np.array(b)


def _two_sided(smaller: int, disagreements: int) -> float:
    return min(1.0, 2 * sum(comb(disagreements, k) for k in range(smaller + 1))
               / 2 ** disagreements)


@pytest.mark.parametrize(("a_only", "b_only", "expected"), [
    (0, 5, 2 / 32),             # every disagreement goes to B: 2 * (1/2)^5
    (2, 8, 112 / 1024),         # 2 * (1 + 10 + 45) / 2^10
    (1, 1, 1.0),
    (40, 12, _two_sided(12, 52)),
])
def test_p_value_is_the_exact_two_sided_binomial_sum(a_only, b_only, expected):
    comparison = paired_comparison(*_vectors(900, a_only, b_only, 50))
    assert comparison.p_value == pytest.approx(expected, rel=1e-9)
    assert (comparison.a_only, comparison.b_only) == (a_only, b_only)
    assert comparison.images == 950 + a_only + b_only


def test_difference_interval_and_verdict():
    comparison = paired_comparison(*_vectors(900, 40, 12, 48))
    assert comparison.difference == pytest.approx((40 - 12) / 1000)
    assert comparison.accuracy_a - comparison.accuracy_b == pytest.approx(comparison.difference)
    assert comparison.low < comparison.difference < comparison.high and comparison.low > 0
    assert comparison.verdict().startswith("A is more accurate")
    close = paired_comparison(*_vectors(900, 14, 12, 74))
    assert close.low < 0 < close.high and close.verdict().startswith("no detectable")


def test_identical_models_cannot_be_told_apart():
    correct = np.array([True, False, True, True])
    comparison = paired_comparison(correct, correct)
    assert comparison.p_value == 1.0 and comparison.difference == 0.0
    assert (comparison.low, comparison.high) == (0.0, 0.0)


def test_vectors_of_other_lengths_are_refused():
    with pytest.raises(ValueError, match="equal, non-empty"):
        paired_comparison(np.ones(3, bool), np.ones(4, bool))
