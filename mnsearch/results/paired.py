"""Is one model more accurate than another on the same images? A paired comparison.

Two finals 0.2 points apart on a 6,000-image validation split look different and usually are
not: the standard error of each accuracy alone is ~0.3 points there. But both models see the
same images, so the question has a sharper, paired answer that counts only the images on which
they disagree (McNemar's test): if A alone is right on `a_only` images and B alone on `b_only`,
then under "equally accurate" each disagreement goes either way with probability 1/2, and the
exact two-sided p-value is a binomial test of `a_only` out of `a_only + b_only`
(`scipy.stats.binomtest`; the exact form, because the counts that matter are often small).
The interval of the accuracy difference is a percentile bootstrap over images
(`scipy.stats.bootstrap`), which resamples the pairs together.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class PairedComparison:
    """Accuracy of A minus B on the same images, with McNemar's exact p-value."""

    images: int
    accuracy_a: float
    accuracy_b: float
    difference: float  # accuracy_a - accuracy_b
    a_only: int  # images A gets right and B wrong
    b_only: int
    p_value: float  # two-sided exact McNemar: 1.0 when they never disagree
    low: float  # CONFIDENCE bootstrap interval of `difference`
    high: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def verdict(self, alpha: float = 1 - CONFIDENCE) -> str:
        """One phrase for a report: which is better, or that the split cannot tell."""
        if self.p_value >= alpha:
            return f"no detectable difference (p = {self.p_value:.2g})"
        better = "A" if self.difference > 0 else "B"
        return f"{better} is more accurate (p = {self.p_value:.2g})"


def paired_comparison(correct_a: np.ndarray, correct_b: np.ndarray,
                      seed: int = 0) -> PairedComparison:
    """Compare two models from their per-image correctness on the same images, in order."""
    a = np.asarray(correct_a, bool)
    b = np.asarray(correct_b, bool)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"need two equal, non-empty 1-D correctness vectors, got shapes "
                         f"{a.shape} and {b.shape}")
    a_only, b_only = int(np.sum(a & ~b)), int(np.sum(~a & b))
    disagreements = a_only + b_only
    p_value = (stats.binomtest(a_only, disagreements, 0.5).pvalue if disagreements else 1.0)
    low, high = _difference_interval(a.astype(np.int8) - b.astype(np.int8), seed)
    return PairedComparison(len(a), float(a.mean()), float(b.mean()),
                            float(a.mean() - b.mean()), a_only, b_only, float(p_value),
                            low, high)


def _difference_interval(differences: np.ndarray, seed: int) -> tuple[float, float]:
    """Percentile bootstrap of the mean per-image difference (a pair is resampled whole)."""
    if not differences.any():
        return 0.0, 0.0
    result = stats.bootstrap((differences,), np.mean, n_resamples=BOOTSTRAP_RESAMPLES,
                             confidence_level=CONFIDENCE, method="percentile", batch=200,
                             random_state=np.random.default_rng(seed))
    interval = result.confidence_interval
    return float(interval.low), float(interval.high)
