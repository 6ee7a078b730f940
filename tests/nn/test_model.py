"""The NNX layer: shapes, train/eval views, BN statistics, residuals and dropout."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from mnsearch.nn.model import build, eval_view
from mnsearch.spec.families import PRESETS, preset


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_builds_and_runs_on_grayscale_28px(name):
    spec = preset(name, 0.5, 28, num_classes=10, in_channels=1)
    model = eval_view(build(spec))
    logits = nnx.jit(lambda network, x: network(x))(model, jnp.ones((2, 28, 28, 1)))
    assert logits.shape == (2, 10) and bool(jnp.all(jnp.isfinite(logits)))


def test_bn_statistics_change_in_the_train_view_only():
    model = build(preset("v3-small", 0.5, 32, num_classes=4))
    images = jax.random.normal(jax.random.key(0), (4, 32, 32, 3))
    before = np.asarray(model.stem.norm.mean[...])
    forward = nnx.jit(lambda network, x: network(x))
    forward(eval_view(model), images)
    np.testing.assert_array_equal(model.stem.norm.mean[...], before)
    forward(model, images)
    assert not np.allclose(model.stem.norm.mean[...], before)


def test_eval_view_is_deterministic_and_train_view_uses_dropout():
    spec = preset("v3-small", 0.5, 32, num_classes=4, dropout=0.5)
    model = build(spec, seed=3)
    images = jax.random.normal(jax.random.key(1), (2, 32, 32, 3))
    evaluation = eval_view(model)
    forward = nnx.jit(lambda network, x: network(x))
    np.testing.assert_array_equal(forward(evaluation, images), forward(evaluation, images))
    assert not np.allclose(forward(model, images), forward(model, images))


def test_same_seed_same_weights():
    spec = preset("v2", 0.35, 32, num_classes=10)
    first, second = (nnx.state(build(spec, seed=7), nnx.Param) for _ in range(2))
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(second), strict=True):
        np.testing.assert_array_equal(a, b)


def test_residuals_exactly_where_the_plan_says():
    model = nnx.eval_shape(lambda: build(preset("v2", 1.0, 64)))
    assert [block.residual for block in model.blocks][:4] == [False, False, True, False]
    v1 = nnx.eval_shape(lambda: build(preset("v1", 0.25, 64)))
    assert not any(block.residual for block in v1.blocks)
