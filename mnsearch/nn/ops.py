"""The convolution primitives every MobileNet layer is made of, in one place.

`depthwise_conv` is the single depthwise convolution of the package: its speed decides training
speed on CPU (../shared/reference/measured.md), so alternative lowerings belong here and nowhere
else. On CPU the depthwise conv, BN + activation and small 1x1 convs call mnsearch.nn.native's
kernels; `depthwise_implementation()` is the one switch. Padding comes from
`mnsearch.spec.plan.padding_amounts`, the rule the cost model uses too.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import warnings
from collections.abc import Iterator

import jax
import jax.numpy as jnp

from mnsearch.errors import MnsearchError
from mnsearch.nn import native
from mnsearch.spec.plan import padding_amounts

_DIMENSIONS = ("NHWC", "HWIO", "NHWC")
DEPTHWISE_IMPLEMENTATIONS = ("auto", "native", "shifted", "lax")
DEPTHWISE_ENVIRONMENT = "MNSEARCH_DEPTHWISE"

# The kernel choice of the code being traced. A context variable, not the process environment:
# it is scoped to a `with` block and to one thread, so an export tracing the portable path
# cannot change what a training loop in another thread compiles.
_KERNELS: contextvars.ContextVar[str] = contextvars.ContextVar("mnsearch_kernels",
                                                              default="auto")


@contextlib.contextmanager
def use_kernels(choice: str) -> Iterator[None]:
    """Trace the code inside with depthwise/BN/1x1 kernels `choice` (`auto`: decide as usual).

    Export and ONNX latency use `lax` (native kernels are custom calls no other runtime has);
    `MobileNet(kernels=...)` enters this around its own forward pass.
    """
    if choice not in DEPTHWISE_IMPLEMENTATIONS:
        raise MnsearchError(f"kernels '{choice}' is not one of "
                            f"{', '.join(DEPTHWISE_IMPLEMENTATIONS)}")
    token = _KERNELS.set(choice)
    try:
        yield
    finally:
        _KERNELS.reset(token)


def model_kernels(choice: str) -> contextlib.AbstractContextManager[None]:
    """A model's own kernel choice: applies unless the caller already chose (export's `lax`)."""
    if choice == "auto" or _KERNELS.get() != "auto":
        return contextlib.nullcontext()
    return use_kernels(choice)


def _explicit_padding(x: jax.Array, padding: str, kernel_size: int, stride: int,
                      depthwise: bool) -> tuple[tuple[int, int], tuple[int, int]]:
    height, width = x.shape[1], x.shape[2]
    return (padding_amounts(padding, kernel_size, stride, height, depthwise),
            padding_amounts(padding, kernel_size, stride, width, depthwise))


# Above this many weights a 1x1 conv's matmul leaves the native kernel's register tiles and L2,
# and XLA's cache-blocked GEMM is faster (512x512 and 1024x1024 weights measured 0.9x and 0.45x
# for the native backward pass; 256x256 and smaller 1.0-1.3x).
NATIVE_POINTWISE_MAX_WEIGHTS = 65_536


def conv(x: jax.Array, kernel: jax.Array, stride: int, padding: str) -> jax.Array:
    """Dense convolution, NHWC input, HWIO kernel; 1x1 stride-1 convs are plain matmuls.

    With the native kernels on CPU, small 1x1 convs use mnsearch.nn.native.pointwise: XLA:CPU
    transposes activations for their weight gradients and runs few-channel matmuls slowly.
    """
    kernel_size = kernel.shape[0]
    if kernel_size == 1 and stride == 1 and not _portable():
        weights = kernel[0, 0]
        if weights.size <= NATIVE_POINTWISE_MAX_WEIGHTS and _use_native(x, weights):
            return native.pointwise(x, weights)
        return jnp.einsum("nhwc,cd->nhwd", x, weights)
    return jax.lax.conv_general_dilated(
        x, kernel, (stride, stride), _explicit_padding(x, padding, kernel_size, stride, False),
        dimension_numbers=_DIMENSIONS)


def depthwise_implementation() -> str:
    """`native` on an x86-64 CPU with AVX2 (`shifted` where it cannot be built, or on other
    CPUs), `lax` elsewhere.

    XLA:CPU lowers grouped convolutions (and above all their gradients) 3-5x slower than K*K
    shifted multiply-adds, and on AVX2/AVX-512 the native kernels (mnsearch.nn.native) beat
    both (`native.faster_here` says where); on GPU/TPU the vendor depthwise kernels behind `lax`
    win. An explicit `use_kernels` context decides first; otherwise
    MNSEARCH_DEPTHWISE=native|shifted|lax, the user's override.
    """
    choice = _KERNELS.get()
    if choice == "auto":
        choice = os.environ.get(DEPTHWISE_ENVIRONMENT, "auto")
    if choice not in DEPTHWISE_IMPLEMENTATIONS:
        raise MnsearchError(f"{DEPTHWISE_ENVIRONMENT}='{choice}' is not one of "
                         f"{', '.join(DEPTHWISE_IMPLEMENTATIONS)}")
    if choice == "native" and (reason := native.unavailable_reason()):
        raise native.NativeUnavailable(f"{DEPTHWISE_ENVIRONMENT}=native: {reason}")
    if choice != "auto":
        return choice
    if jax.default_backend() != "cpu":
        return "lax"
    if not native.faster_here():
        return "shifted"
    if reason := native.unavailable_reason():
        _warn_native_unavailable(reason)
        return "shifted"
    return "native"


@functools.cache
def _warn_native_unavailable(reason: str) -> None:
    warnings.warn(f"native CPU kernels unavailable, using XLA's slower ops (shifted depthwise "
                  f"sum): {reason}", RuntimeWarning, stacklevel=3)


def _use_native(*arrays: jax.Array) -> bool:
    """The native kernels are float32 only: bf16 compute takes XLA's ops."""
    return (all(array.dtype == jnp.float32 for array in arrays)
            and depthwise_implementation() == "native")


def depthwise_conv(x: jax.Array, kernel: jax.Array, stride: int, padding: str,
                   implementation: str | None = None) -> jax.Array:
    """Depthwise convolution, NHWC input, kernel (K, K, C): one K x K filter per channel.

    The native kernels are float32 only; other dtypes (bf16 compute) take the shifted sum.
    """
    kernel_size, channels = kernel.shape[0], kernel.shape[-1]
    pads = _explicit_padding(x, padding, kernel_size, stride, True)
    chosen = implementation or depthwise_implementation()
    if chosen == "native" and x.dtype == kernel.dtype == jnp.float32:
        return native.depthwise(x, kernel, stride, pads)
    if chosen in ("native", "shifted"):
        return _shifted_depthwise(x, kernel, stride, pads)
    return jax.lax.conv_general_dilated(
        x, kernel.reshape(kernel_size, kernel_size, 1, channels), (stride, stride), pads,
        dimension_numbers=_DIMENSIONS, feature_group_count=channels)


Pads = tuple[tuple[int, int], tuple[int, int]]


def _shifted_sum(x: jax.Array, kernel: jax.Array, stride: int, pads: Pads) -> jax.Array:
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


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _shifted_depthwise(x: jax.Array, kernel: jax.Array, stride: int, pads: Pads) -> jax.Array:
    """`_shifted_sum` with a hand-written backward pass that saves only x as residual.

    Autodiff of the shifted sum saves every tap (a padded slice of x) for the kernel gradient:
    XLA:CPU then materialises K*K padded copies of each activation, recomputing the BatchNorm and
    activation that produce x in every one, and its fused `pad` loops are slow. Here the kernel
    gradient reads unpadded slices of x instead (15% more images/s for the V1 training step).
    """
    return _shifted_sum(x, kernel, stride, pads)


def _shifted_forward(x: jax.Array, kernel: jax.Array, stride: int,
                     pads: Pads) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    return _shifted_sum(x, kernel, stride, pads), (x, kernel)


def _shifted_backward(stride: int, pads: Pads, residuals: tuple[jax.Array, jax.Array],
                      grad: jax.Array) -> tuple[jax.Array, jax.Array]:
    x, kernel = residuals
    _, input_vjp = jax.vjp(lambda inputs: _shifted_sum(inputs, kernel, stride, pads), x)
    (input_grad,) = input_vjp(grad)
    return input_grad, _depthwise_kernel_grad(x, grad, kernel.shape[0], stride, pads)


_shifted_depthwise.defvjp(_shifted_forward, _shifted_backward)


def _valid_outputs(out_size: int, in_size: int, offset: int, stride: int) -> tuple[int, int]:
    """Output positions [first, last) whose input position i * stride + offset is not padding."""
    first = max(0, -(offset // stride))
    last = min(out_size, (in_size - 1 - offset) // stride + 1)
    return first, max(first, last)


def _depthwise_kernel_grad(x: jax.Array, grad: jax.Array, kernel_size: int, stride: int,
                           pads: Pads) -> jax.Array:
    """d(loss)/d(kernel): per tap, sum of grad times x over the positions that see real input.

    Padding contributes zeros, so each tap reads a plain (unpadded) slice of x and of grad.
    """
    batch, height, width, channels = x.shape
    taps = []
    for row in range(kernel_size):
        row_offset = row - pads[0][0]
        first_row, last_row = _valid_outputs(grad.shape[1], height, row_offset, stride)
        for column in range(kernel_size):
            column_offset = column - pads[1][0]
            first_col, last_col = _valid_outputs(grad.shape[2], width, column_offset, stride)
            if first_row == last_row or first_col == last_col:
                taps.append(jnp.zeros((channels,), x.dtype))
                continue
            inputs = jax.lax.slice(
                x, (0, first_row * stride + row_offset, first_col * stride + column_offset, 0),
                (batch, (last_row - 1) * stride + row_offset + 1,
                 (last_col - 1) * stride + column_offset + 1, channels),
                (1, stride, stride, 1))
            outputs = grad[:, first_row:last_row, first_col:last_col, :]
            taps.append(jnp.sum(inputs * outputs, axis=(0, 1, 2)))
    return jnp.stack(taps).reshape(kernel_size, kernel_size, channels)


_BATCH_AXES = (0, 1, 2)  # NHWC: statistics per channel over batch, height and width


def batch_norm_activation(x: jax.Array, scale: jax.Array, bias: jax.Array, epsilon: float,
                          activation: str) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Training-mode BatchNorm on batch statistics, then `activation`: (y, mean, variance).

    The statistics are flax.nnx.BatchNorm's (float32, biased variance E[x²] − E[x]², clipped at
    0) and so is y; only the backward pass differs. Autodiff of BN + activation materialises
    the activation's gradient and the normalised input and reduces them in separate passes;
    the hand-written one recomputes both inside one pass for the two per-channel sums and one
    for dx. BN was ~1.5 ms per layer of a 175 ms V1 step (../shared/reference/measured.md);
    this backward pass measured 1.02–1.09× (V1 α=0.25, 28 px) and 1.04–1.26× (V2 α=0.5, 32 px)
    the training step's images/s of nnx.BatchNorm's autodiff, interleaved in one process.
    """
    if _use_native(x):
        return native.batch_norm_activation(x, scale, bias, epsilon, activation)
    return _batch_norm_activation(x, scale, bias, epsilon, activation)


def _batch_norm_forward(x: jax.Array, scale: jax.Array, bias: jax.Array, epsilon: float,
                        activation: str) -> tuple[jax.Array, jax.Array, jax.Array]:
    inputs = x.astype(jnp.float32)
    mean = jnp.mean(inputs, _BATCH_AXES)
    variance = jnp.maximum(jnp.mean(jnp.square(inputs), _BATCH_AXES) - jnp.square(mean), 0.0)
    normalized = (inputs - mean) * (jax.lax.rsqrt(variance + epsilon) * scale) + bias
    return activate(normalized, activation).astype(x.dtype), mean, variance


_batch_norm_activation = jax.custom_vjp(_batch_norm_forward, nondiff_argnums=(3, 4))


def _batch_norm_residuals(x: jax.Array, scale: jax.Array, bias: jax.Array, epsilon: float,
                          activation: str) -> tuple[tuple[jax.Array, ...], tuple[jax.Array, ...]]:
    outputs = _batch_norm_forward(x, scale, bias, epsilon, activation)
    return outputs, (x, scale, bias, outputs[1], outputs[2])


def _batch_norm_backward(epsilon: float, activation: str, residuals: tuple[jax.Array, ...],
                         grads: tuple[jax.Array, ...]) -> tuple[jax.Array, jax.Array, jax.Array]:
    x, scale, bias, mean, variance = residuals
    grad_output, grad_mean, grad_variance = grads
    inputs = x.astype(jnp.float32)
    count = x.size // x.shape[-1]
    inverse = jax.lax.rsqrt(variance + epsilon)
    normalized = (inputs - mean) * inverse
    _, activation_vjp = jax.vjp(lambda z: activate(z, activation), normalized * scale + bias)
    (grad_z,) = activation_vjp(grad_output.astype(jnp.float32))
    grad_bias = jnp.sum(grad_z, _BATCH_AXES)
    grad_scale = jnp.sum(grad_z * normalized, _BATCH_AXES)
    grad_inputs = (scale * inverse / count) * (count * grad_z - grad_bias
                                                - normalized * grad_scale)
    # The statistics' own cotangents (zero when they only feed running averages).
    grad_inputs += (grad_mean + 2.0 * grad_variance * (inputs - mean)) / count
    return grad_inputs.astype(x.dtype), grad_scale, grad_bias


_batch_norm_activation.defvjp(_batch_norm_residuals, _batch_norm_backward)


def _portable() -> bool:
    """Tracing the portable `lax` path (export, ONNX latency): 1x1 convs stay convolutions
    and ReLU6 a clip, the operators ONNX Runtime fuses with BN and quantizes (as an einsum and
    max/min pairs, measured on V1: every pointwise layer stayed float in the int8 model)."""
    return _KERNELS.get() == "lax"


def relu6(x: jax.Array) -> jax.Array:
    """min(max(x, 0), 6); a clip (ONNX `Clip`) on the portable path, the same values."""
    return jnp.clip(x, 0.0, 6.0) if _portable() else jax.nn.relu6(x)


def hard_sigmoid(x: jax.Array) -> jax.Array:
    """ReLU6(x + 3) / 6, the V3 paper's piecewise-linear sigmoid."""
    return relu6(x + 3.0) * (1.0 / 6.0)


def activate(x: jax.Array, name: str) -> jax.Array:
    """Apply a spec activation by name (relu, relu6, hswish, identity)."""
    if name == "relu":
        return jax.nn.relu(x)
    if name == "relu6":
        return relu6(x)
    if name == "hswish":
        return x * hard_sigmoid(x)
    if name == "identity":
        return x
    raise ValueError(f"unknown activation '{name}' (allowed: relu, relu6, hswish, identity)")
