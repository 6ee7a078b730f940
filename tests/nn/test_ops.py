"""The CPU fast paths (native kernels, shifted multiply-adds) compute what lax.conv computes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from mnsearch.cache import CACHE_ENVIRONMENT
from mnsearch.nn import native
from mnsearch.nn.model import build, eval_view
from mnsearch.nn.ops import (
    activate,
    batch_norm_activation,
    conv,
    depthwise_conv,
    depthwise_implementation,
)
from mnsearch.spec.families import preset

FAST_PATHS = ["native", "shifted"]


@pytest.mark.parametrize("implementation", FAST_PATHS)
@pytest.mark.parametrize("kernel_size, stride, size, padding", [
    (3, 1, 8, "same"), (3, 2, 8, "same"), (3, 2, 7, "same"), (5, 2, 9, "same"),
    (5, 1, 6, "symmetric"), (3, 2, 7, "keras_v1"), (3, 2, 1, "same"), (5, 2, 2, "same"),
])
def test_fast_depthwise_equals_lax_conv(implementation, kernel_size, stride, size, padding):
    """29 channels cover the native kernels' 16-, 8-, 4- and 1-channel blocks."""
    keys = jax.random.split(jax.random.key(0), 2)
    x = jax.random.normal(keys[0], (2, size, size, 29))
    kernel = jax.random.normal(keys[1], (kernel_size, kernel_size, 29))

    def loss(x, kernel, implementation):
        out = depthwise_conv(x, kernel, stride, padding, implementation)
        return jnp.sum(jnp.sin(out)), out

    gradient = jax.jit(jax.value_and_grad(loss, (0, 1), has_aux=True), static_argnums=2)
    (_, fast), fast_grads = gradient(x, kernel, implementation)
    (_, slow), slow_grads = jax.value_and_grad(loss, (0, 1), has_aux=True)(x, kernel, "lax")
    np.testing.assert_allclose(fast, slow, atol=1e-5)
    for fast_grad, slow_grad in zip(fast_grads, slow_grads, strict=True):
        np.testing.assert_allclose(fast_grad, slow_grad, atol=1e-4)


@pytest.mark.parametrize("implementation", FAST_PATHS)
def test_whole_model_gradients_agree_between_paths(monkeypatch, implementation):
    model = build(preset("v3-small", 0.5, 32, num_classes=3))
    images = jax.random.normal(jax.random.key(1), (2, 32, 32, 3))

    def gradients(implementation):
        monkeypatch.setenv("MNSEARCH_DEPTHWISE", implementation)
        view = eval_view(model)
        return nnx.jit(nnx.grad(lambda network: jnp.sum(network(images) ** 2)))(view)

    fast_grads, slow_grads = gradients(implementation), gradients("lax")
    assert len(jax.tree.leaves(fast_grads)) == len(jax.tree.leaves(nnx.state(model, nnx.Param)))
    for fast, slow in zip(jax.tree.leaves(fast_grads), jax.tree.leaves(slow_grads), strict=True):
        np.testing.assert_allclose(fast, slow, rtol=1e-3, atol=1e-4)


def test_implementation_choice(monkeypatch):
    monkeypatch.delenv("MNSEARCH_DEPTHWISE", raising=False)
    # a CPU with a C++ compiler: native where it was measured faster (x86-64 with AVX2)
    assert depthwise_implementation() == ("native" if native.faster_here() else "shifted")
    monkeypatch.setattr(native, "faster_here", lambda: True)
    assert depthwise_implementation() == "native"
    monkeypatch.setattr(native, "faster_here", lambda: False)
    assert depthwise_implementation() == "shifted"
    monkeypatch.setenv("MNSEARCH_DEPTHWISE", "lax")
    assert depthwise_implementation() == "lax"
    monkeypatch.setenv("MNSEARCH_DEPTHWISE", "fast")
    with pytest.raises(ValueError, match="native, shifted, lax"):
        depthwise_implementation()


def test_without_a_compiler_cpu_falls_back_to_the_shifted_sum(monkeypatch):
    """No compiler: `auto` warns and uses the shifted sum; an explicit `native` says why not."""
    monkeypatch.setattr(native, "_register", lambda: "no C++ compiler found (...)")
    monkeypatch.setattr(native, "faster_here", lambda: True)  # a CPU where auto takes native
    monkeypatch.delenv("MNSEARCH_DEPTHWISE", raising=False)
    with pytest.warns(RuntimeWarning, match="shifted depthwise sum\\): no C\\+\\+ compiler"):
        assert depthwise_implementation() == "shifted"
    monkeypatch.setenv("MNSEARCH_DEPTHWISE", "native")
    with pytest.raises(native.NativeUnavailable, match="native: no C"):
        depthwise_implementation()


def test_native_library_is_built_once_per_source_and_cpu(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENVIRONMENT, str(tmp_path))
    first = native.library_path()
    modified = first.stat().st_mtime_ns
    assert first.parent == tmp_path / "native" and native.library_path() == first
    assert first.stat().st_mtime_ns == modified and list(first.parent.iterdir()) == [first]


def test_a_compiler_error_is_reported_not_hidden(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENVIRONMENT, str(tmp_path))
    monkeypatch.setenv("CXX", "false")
    with pytest.raises(native.NativeUnavailable,
                       match="compiling .*csrc with false failed \\(exit 1\\)"):
        native.library_path()
    assert list((tmp_path / "native").iterdir()) == []  # nothing half-written


@pytest.mark.parametrize("implementation", FAST_PATHS)
@pytest.mark.parametrize("activation", ["relu", "relu6", "hswish", "identity"])
def test_fused_batch_norm_equals_flax_batch_norm(monkeypatch, implementation, activation):
    """Outputs, statistics and gradients (x, scale, bias) of nnx.BatchNorm + activation.

    `native` runs mnsearch.nn.native's kernels, `shifted` the XLA custom_vjp; 21 channels cover
    the native loops' 16-, 8- and 1-channel blocks.
    """
    monkeypatch.setenv("MNSEARCH_DEPTHWISE", implementation)
    channels = 21
    keys = jax.random.split(jax.random.key(2), 6)
    x = 2.0 * jax.random.normal(keys[0], (4, 5, 5, channels)) + 0.5
    scale = 1.0 + 0.3 * jax.random.normal(keys[1], (channels,))
    bias = 0.3 * jax.random.normal(keys[2], (channels,))
    cotangents = (jax.random.normal(keys[3], x.shape), jax.random.normal(keys[4], (channels,)),
                  jax.random.normal(keys[5], (channels,)))

    def reference(x, scale, bias):
        norm = nnx.BatchNorm(channels, epsilon=1e-3, momentum=0.0, rngs=nnx.Rngs(0))
        norm.scale[...], norm.bias[...] = scale, bias
        y = activate(norm(x), activation)
        # nnx.BatchNorm stops the statistics' gradient; the fused op differentiates them.
        return y, jnp.mean(x, (0, 1, 2)), jnp.var(x, (0, 1, 2)), norm.mean[...], norm.var[...]

    def fused(x, scale, bias):
        return batch_norm_activation(x, scale, bias, 1e-3, activation)

    *expected, flax_mean, flax_variance = reference(x, scale, bias)
    np.testing.assert_allclose(flax_mean, expected[1], atol=1e-6)
    np.testing.assert_allclose(flax_variance, expected[2], rtol=1e-5)
    expected, expected_vjp = jax.vjp(lambda *args: reference(*args)[:3], x, scale, bias)
    actual, actual_vjp = jax.vjp(fused, x, scale, bias)
    assert float(jnp.abs(expected[0]).max()) > 0.5  # a signal that can disagree
    for got, want in zip(actual, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    for got, want in zip(actual_vjp(cotangents), expected_vjp(cotangents), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("rows, inner, columns", [
    (1, 3, 17), (37, 8, 48), (300, 13, 5), (24, 96, 40), (150, 40, 21), (9, 1, 1),
])
def test_native_pointwise_equals_a_matmul(rows, inner, columns):
    """Values and both gradients, for row/column counts off the register tiles and the
    weight gradient's 64-row blocks, and for inputs wide enough (40 and 96, on a pool of up to
    2 threads; 96 up to 6) that the weight gradient is split over input channels."""
    keys = jax.random.split(jax.random.key(3), 3)
    x = jax.random.normal(keys[0], (rows, 1, 1, inner))
    kernel = jax.random.normal(keys[1], (inner, columns))
    cotangent = jax.random.normal(keys[2], (rows, 1, 1, columns))

    def loss(function, x, kernel):
        return jnp.vdot(function(x, kernel), cotangent)

    def matmul(x, kernel):
        return jnp.einsum("nhwc,cd->nhwd", x, kernel, precision="highest")

    np.testing.assert_allclose(jax.jit(native.pointwise)(x, kernel), matmul(x, kernel),
                               rtol=1e-5, atol=1e-5)
    gradient = jax.jit(jax.grad(loss, (1, 2)), static_argnums=0)
    for got, want in zip(gradient(native.pointwise, x, kernel), gradient(matmul, x, kernel),
                         strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_large_pointwise_convs_stay_on_xla(monkeypatch):
    """Above NATIVE_POINTWISE_MAX_WEIGHTS the 1x1 conv is XLA's dot, below it the native call."""
    monkeypatch.setenv("MNSEARCH_DEPTHWISE", "native")
    x = jnp.ones((2, 2, 2, 512), jnp.float32)

    def program(columns):
        kernel = jnp.ones((1, 1, 512, columns), jnp.float32)
        return str(jax.make_jaxpr(lambda x, kernel: conv(x, kernel, 1, "same"))(x, kernel))

    assert "mnsearch_pointwise_forward" in program(128)  # 65,536 weights
    assert "mnsearch_pointwise_forward" not in program(129) and "dot_general" in program(129)
