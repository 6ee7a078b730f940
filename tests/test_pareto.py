"""Pareto front against brute force; hypervolume against hand-computed values."""

import itertools

import numpy as np
import pytest

from mnsearch.pareto import hypervolume, normalized_losses, pareto_mask


def _brute_force(points, directions):
    signs = np.array([-1 if d == "maximize" else 1 for d in directions])
    losses = points * signs
    return np.array([not any(np.all(o <= p) and np.any(o < p) for o in losses) for p in losses])


@pytest.mark.parametrize("seed", range(5))
def test_pareto_mask_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    points = np.round(rng.uniform(size=(60, 2)), 1)  # rounding makes ties
    directions = ["maximize", "minimize"]
    np.testing.assert_array_equal(pareto_mask(points, directions),
                                  _brute_force(points, directions))


def test_hypervolume_known_values():
    assert hypervolume(np.array([[0.5, 0.5]])) == pytest.approx(0.25)
    assert hypervolume(np.array([[0.2, 0.6], [0.6, 0.2]])) == pytest.approx(0.48)
    assert hypervolume(np.array([[0.2, 0.6], [0.6, 0.2], [0.7, 0.7]])) == pytest.approx(0.48)
    assert hypervolume(np.array([[0.5, 0.5, 0.5]])) == pytest.approx(0.125)
    assert hypervolume(np.array([[1.5, 0.1]])) == 0.0
    assert hypervolume(np.zeros((0, 2))) == 0.0


def test_hypervolume_3d_matches_monte_carlo():
    rng = np.random.default_rng(0)
    losses = rng.uniform(size=(8, 3))
    samples = rng.uniform(size=(200_000, 3))
    dominated = np.zeros(len(samples), dtype=bool)
    for point in losses:
        dominated |= np.all(samples >= point, axis=1)
    assert hypervolume(losses) == pytest.approx(dominated.mean(), abs=5e-3)


def test_normalized_losses():
    losses = normalized_losses(np.array([[0.9, 50.0]]), ["accuracy", "madds"], {"madds": 100})
    np.testing.assert_allclose(losses, [[0.1, 0.5]])
    assert list(itertools.chain(*losses)) == pytest.approx([0.1, 0.5])


@pytest.mark.parametrize("seed", range(5))
def test_pareto_mask_matches_brute_force_in_three_objectives_with_nans(seed):
    rng = np.random.default_rng(seed)
    points = np.round(rng.uniform(size=(80, 3)), 1)
    points[rng.integers(0, 80, size=3), rng.integers(0, 3, size=3)] = np.nan
    points[5] = points[6]  # identical rows: both kept or both dropped
    directions = ["maximize", "minimize", "minimize"]
    np.testing.assert_array_equal(pareto_mask(points, directions),
                                  _brute_force(points, directions))
    assert pareto_mask(np.zeros((0, 2)), ["maximize", "minimize"]).shape == (0,)
