"""The convolution primitives every MobileNet layer is made of, in one place.

`depthwise_conv` is the single depthwise convolution of the package: its speed decides training
speed on CPU (../shared/reference/measured.md), so alternative lowerings belong here and nowhere
else. Padding comes from `mnsearch.arch.padding_amounts`, the rule the cost model uses too.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp

from mnsearch.plan import padding_amounts

_DIMENSIONS = ("NHWC", "HWIO", "NHWC")
DEPTHWISE_IMPLEMENTATIONS = ("auto", "shifted", "lax")
DEPTHWISE_ENVIRONMENT = "MNSEARCH_DEPTHWISE"


def _explicit_padding(x: jax.Array, padding: str, kernel_size: int, stride: int,
                      depthwise: bool) -> tuple[tuple[int, int], tuple[int, int]]:
    height, width = x.shape[1], x.shape[2]
    return (padding_amounts(padding, kernel_size, stride, height, depthwise),
            padding_amounts(padding, kernel_size, stride, width, depthwise))


def conv(x: jax.Array, kernel: jax.Array, stride: int, padding: str) -> jax.Array:
    """Dense convolution, NHWC input, HWIO kernel; 1x1 stride-1 convs are plain matmuls."""
    kernel_size = kernel.shape[0]
    if kernel_size == 1 and stride == 1:
        return jnp.einsum("nhwc,cd->nhwd", x, kernel[0, 0])
    return jax.lax.conv_general_dilated(
        x, kernel, (stride, stride), _explicit_padding(x, padding, kernel_size, stride, False),
        dimension_numbers=_DIMENSIONS)


def depthwise_implementation() -> str:
    """`shifted` on CPU, `lax` elsewhere; MNSEARCH_DEPTHWISE=shifted|lax overrides.

    XLA:CPU lowers grouped convolutions (and above all their gradients) 3-5x slower than K*K
    shifted multiply-adds; on GPU/TPU the vendor depthwise kernels behind `lax` win. Read at
    trace time, so one process can compare both.
    """
    choice = os.environ.get(DEPTHWISE_ENVIRONMENT, "auto")
    if choice not in DEPTHWISE_IMPLEMENTATIONS:
        raise ValueError(f"{DEPTHWISE_ENVIRONMENT}='{choice}' is not one of "
                         f"{', '.join(DEPTHWISE_IMPLEMENTATIONS)}")
    if choice == "auto":
        return "shifted" if jax.default_backend() == "cpu" else "lax"
    return choice


def depthwise_conv(x: jax.Array, kernel: jax.Array, stride: int, padding: str,
                   implementation: str | None = None) -> jax.Array:
    """Depthwise convolution, NHWC input, kernel (K, K, C): one K x K filter per channel."""
    kernel_size, channels = kernel.shape[0], kernel.shape[-1]
    pads = _explicit_padding(x, padding, kernel_size, stride, True)
    if (implementation or depthwise_implementation()) == "shifted":
        return _shifted_depthwise(x, kernel, stride, pads)
    return jax.lax.conv_general_dilated(
        x, kernel.reshape(kernel_size, kernel_size, 1, channels), (stride, stride), pads,
        dimension_numbers=_DIMENSIONS, feature_group_count=channels)


def _shifted_depthwise(x: jax.Array, kernel: jax.Array, stride: int,
                       pads: tuple[tuple[int, int], tuple[int, int]]) -> jax.Array:
    """Sum over the K*K taps of a strided slice times that tap's per-channel weight."""
    kernel_size = kernel.shape[0]
    padded = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    batch, height, width, channels = padded.shape
    out_height = (height - kernel_size) // stride + 1
    out_width = (width - kernel_size) // stride + 1
    total = None
    for row in range(kernel_size):
        for column in range(kernel_size):
            tap = jax.lax.slice(
                padded, (0, row, column, 0),
                (batch, row + (out_height - 1) * stride + 1,
                 column + (out_width - 1) * stride + 1, channels),
                (1, stride, stride, 1))
            term = tap * kernel[row, column]
            total = term if total is None else total + term
    return total


def hard_sigmoid(x: jax.Array) -> jax.Array:
    """ReLU6(x + 3) / 6, the V3 paper's piecewise-linear sigmoid."""
    return jax.nn.relu6(x + 3.0) * (1.0 / 6.0)


def activate(x: jax.Array, name: str) -> jax.Array:
    """Apply a spec activation by name (relu, relu6, hswish, identity)."""
    if name == "relu":
        return jax.nn.relu(x)
    if name == "relu6":
        return jax.nn.relu6(x)
    if name == "hswish":
        return x * hard_sigmoid(x)
    if name == "identity":
        return x
    raise ValueError(f"unknown activation '{name}' (allowed: relu, relu6, hswish, identity)")
