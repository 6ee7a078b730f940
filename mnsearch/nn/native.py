"""Native XLA:CPU kernels (XLA FFI): depthwise conv, BN + activation, small 1x1 convs.

XLA:CPU lowers a grouped convolution and its gradients 3-5x slower than K*K shifted
multiply-adds; the shifted sum itself becomes dozens of small fused loops per layer; BatchNorm
becomes one pass over the activation per statistic and per backward sum; and few-channel
matmuls get transposed activations and run far below the machine's speed. The C++ in
`csrc/` does each in one or two passes, in vector registers, on XLA's intra-op threads
(README, "CPU speed"). It is compiled here with the machine's C++ compiler against the XLA FFI
headers that jaxlib ships (no build step at install time, no binary in the package), cached per
source, jax version, compiler and CPU, and registered with XLA on first use, never at import.
Without a compiler `unavailable_reason()` says why, and mnsearch.nn.ops uses XLA's ops, which
compute the same values.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from mnsearch.cache import cache_folder as shared_cache_folder
from mnsearch.errors import MnsearchError

SOURCES = tuple(Path(__file__).parent / "csrc" / name
                for name in ("parallel.h", "vectors.h", "depthwise.cc", "batch_norm.cc",
                             "pointwise.cc"))
_TARGETS = {"mnsearch_depthwise_forward": "MnsearchDepthwiseForward",
            "mnsearch_depthwise_backward": "MnsearchDepthwiseBackward",
            "mnsearch_batch_norm_forward": "MnsearchBatchNormForward",
            "mnsearch_batch_norm_backward": "MnsearchBatchNormBackward",
            "mnsearch_pointwise_forward": "MnsearchPointwiseForward",
            "mnsearch_pointwise_backward": "MnsearchPointwiseBackward"}
ACTIVATIONS = {"identity": 0, "relu": 1, "relu6": 2, "hswish": 3}  # codes of batch_norm.cc
Pads = tuple[tuple[int, int], tuple[int, int]]


class NativeUnavailable(MnsearchError):
    """The native kernels cannot be built or loaded here; the message says why and what helps."""


def cache_folder() -> Path:
    """Where compiled kernels are kept: the `native` folder of mnsearch's cache."""
    return shared_cache_folder("native")


def _compiler() -> str:
    compiler = os.environ.get("CXX") or next(
        (found for name in ("c++", "g++", "clang++") if (found := shutil.which(name))), None)
    if compiler is None:
        raise NativeUnavailable("no C++ compiler found for the native kernels "
                                "(install one, e.g. `apt-get install g++`, or set CXX)")
    return compiler


def _cpu_description() -> str:
    """The CPU the library is tuned for (-march=native): model and feature flags."""
    lines = _cpu_lines()
    return "".join(lines) if lines else platform.machine() + platform.processor()


@functools.cache
def _cpu_lines() -> list[str]:
    """/proc/cpuinfo's distinct 'model name' and 'flags' lines (none where it cannot be read)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []
    return sorted({line for line in lines if line.startswith(("model name", "flags"))})


def _cpu_field(name: str) -> str:
    """The value of /proc/cpuinfo's first `name` line, '' where there is none."""
    return next((line.partition(":")[2].strip() for line in _cpu_lines()
                 if line.startswith(name)), "")


@functools.cache
def faster_here() -> bool:
    """Whether `auto` takes these kernels on this CPU: x86-64 with AVX2 (every AVX-512 CPU has
    it). There the whole training step measured 1.5-2.0x XLA's shifted sum on AVX-512 VMs, and
    0.88-1.76x (1.3-1.8x on the Fashion-MNIST finals) on a 2-core AVX2 EPYC
    (docs/performance.md, "CPUs without AVX-512"). Elsewhere (ARM, older x86) they are
    unmeasured, so `auto` keeps XLA's ops; MNSEARCH_DEPTHWISE=native still forces these."""
    return "avx2" in cpu_flags()


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where it does not say)."""
    return frozenset(_cpu_field("flags").split())


def cpu_name() -> str:
    """The CPU's model name, for benchmark records ('' where /proc/cpuinfo does not say)."""
    return _cpu_field("model name")


def _compile_command(compiler: str, output: Path) -> list[str]:
    return [compiler, "-O3", "-march=native", "-std=c++17", "-shared", "-fPIC", "-w",
            f"-I{jax.ffi.include_dir()}", *(str(path) for path in SOURCES if path.suffix == ".cc"),
            "-o", str(output)]


def library_path() -> Path:
    """The compiled kernels for this source, jax and CPU; compiled (a few seconds) if missing."""
    compiler = _compiler()
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout
    sources = [path.read_text() for path in SOURCES]
    key = hashlib.sha256("\0".join([*sources, jax.__version__, version,
                                    _cpu_description()]).encode()).hexdigest()[:16]
    target = cache_folder() / f"kernels-{key}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        built = Path(scratch) / target.name
        result = subprocess.run(_compile_command(compiler, built), capture_output=True, text=True)
        if result.returncode != 0:
            raise NativeUnavailable(f"compiling {SOURCES[0].parent} with {compiler} failed "
                                    f"(exit {result.returncode}): "
                                    f"{result.stderr.strip()[-2000:] or 'no message'}")
        os.replace(built, target)  # atomic: concurrent workers never load a half-written file
    return target


@functools.cache
def _register() -> str:
    """Build, load and register the kernels once per process; '' on success, else why not."""
    try:
        library = ctypes.cdll.LoadLibrary(str(library_path()))
    except (NativeUnavailable, OSError) as error:
        return str(error)
    for target, symbol in _TARGETS.items():
        jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(getattr(library, symbol)),
                                    platform="cpu")
    return ""


def unavailable_reason() -> str:
    """Why the native kernels cannot be used in this process ('' when they can)."""
    return _register()


def _attributes(stride: int, pads: Pads) -> dict[str, np.int64]:
    return {"stride": np.int64(stride), "pad_top": np.int64(pads[0][0]),
            "pad_left": np.int64(pads[1][0])}


def _output_shape(x: jax.Array, kernel_size: int, stride: int, pads: Pads) -> tuple[int, ...]:
    batch, height, width, channels = x.shape
    return (batch, (height + sum(pads[0]) - kernel_size) // stride + 1,
            (width + sum(pads[1]) - kernel_size) // stride + 1, channels)


def _forward_call(x: jax.Array, kernel: jax.Array, stride: int, pads: Pads) -> jax.Array:
    output = jax.ShapeDtypeStruct(_output_shape(x, kernel.shape[0], stride, pads), x.dtype)
    return jax.ffi.ffi_call("mnsearch_depthwise_forward", output, vmap_method="sequential")(
        x, kernel, **_attributes(stride, pads))


def depthwise(x: jax.Array, kernel: jax.Array, stride: int, pads: Pads) -> jax.Array:
    """Depthwise convolution of float32 NHWC x with a (K, K, C) kernel and explicit padding.

    Builds and registers the kernels on first use; NativeUnavailable says why it cannot.
    """
    if reason := unavailable_reason():
        raise NativeUnavailable(reason)
    return _depthwise(x, kernel, stride, pads)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _depthwise(x: jax.Array, kernel: jax.Array, stride: int, pads: Pads) -> jax.Array:
    return _forward_call(x, kernel, stride, pads)


def _forward(x: jax.Array, kernel: jax.Array, stride: int,
             pads: Pads) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    return _forward_call(x, kernel, stride, pads), (x, kernel)


def _backward(stride: int, pads: Pads, residuals: tuple[jax.Array, jax.Array],
              grad: jax.Array) -> tuple[jax.Array, jax.Array]:
    x, kernel = residuals
    shapes = (jax.ShapeDtypeStruct(x.shape, x.dtype), jax.ShapeDtypeStruct(kernel.shape,
                                                                           kernel.dtype))
    return jax.ffi.ffi_call("mnsearch_depthwise_backward", shapes, vmap_method="sequential")(
        x, kernel, grad, **_attributes(stride, pads))


_depthwise.defvjp(_forward, _backward)


def batch_norm_activation(x: jax.Array, scale: jax.Array, bias: jax.Array, epsilon: float,
                          activation: str) -> tuple[jax.Array, jax.Array, jax.Array]:
    """mnsearch.nn.ops.batch_norm_activation (float32, channels last) as native kernels."""
    if reason := unavailable_reason():
        raise NativeUnavailable(reason)
    return _batch_norm(x, scale, bias, epsilon, activation)


def _batch_norm_call(x: jax.Array, scale: jax.Array, bias: jax.Array, epsilon: float,
                     activation: str) -> tuple[jax.Array, jax.Array, jax.Array]:
    statistic = jax.ShapeDtypeStruct(scale.shape, jnp.float32)
    return jax.ffi.ffi_call(
        "mnsearch_batch_norm_forward", (jax.ShapeDtypeStruct(x.shape, x.dtype), statistic,
                                        statistic), vmap_method="sequential")(
        x, scale, bias, epsilon=np.float32(epsilon), activation=np.int64(ACTIVATIONS[activation]))


_batch_norm = jax.custom_vjp(_batch_norm_call, nondiff_argnums=(3, 4))


def _batch_norm_forward(x: jax.Array, scale: jax.Array, bias: jax.Array, epsilon: float,
                        activation: str) -> tuple[tuple[jax.Array, ...], tuple[jax.Array, ...]]:
    outputs = _batch_norm_call(x, scale, bias, epsilon, activation)
    return outputs, (x, scale, bias, outputs[1], outputs[2])


def _batch_norm_backward(epsilon: float, activation: str, residuals: tuple[jax.Array, ...],
                         grads: tuple[jax.Array, ...]) -> tuple[jax.Array, jax.Array, jax.Array]:
    x, scale, bias, mean, variance = residuals
    shapes = (jax.ShapeDtypeStruct(x.shape, x.dtype), jax.ShapeDtypeStruct(scale.shape,
                                                                           jnp.float32),
              jax.ShapeDtypeStruct(bias.shape, jnp.float32))
    return jax.ffi.ffi_call("mnsearch_batch_norm_backward", shapes, vmap_method="sequential")(
        x, scale, bias, mean, variance, *grads, epsilon=np.float32(epsilon),
        activation=np.int64(ACTIVATIONS[activation]))


_batch_norm.defvjp(_batch_norm_forward, _batch_norm_backward)


def pointwise(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """x (..., in) times kernel (in, out): a 1x1 stride-1 convolution, float32."""
    if reason := unavailable_reason():
        raise NativeUnavailable(reason)
    return _pointwise(x, kernel)


def _pointwise_call(x: jax.Array, kernel: jax.Array) -> jax.Array:
    output = jax.ShapeDtypeStruct((*x.shape[:-1], kernel.shape[-1]), x.dtype)
    return jax.ffi.ffi_call("mnsearch_pointwise_forward", output,
                            vmap_method="sequential")(x, kernel)


_pointwise = jax.custom_vjp(_pointwise_call)


def _pointwise_forward(x: jax.Array, kernel: jax.Array) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    return _pointwise_call(x, kernel), (x, kernel)


def _pointwise_backward(residuals: tuple[jax.Array, ...],
                        grad: jax.Array) -> tuple[jax.Array, jax.Array]:
    x, kernel = residuals
    shapes = (jax.ShapeDtypeStruct(x.shape, x.dtype),
              jax.ShapeDtypeStruct(kernel.shape, kernel.dtype))
    return jax.ffi.ffi_call("mnsearch_pointwise_backward", shapes, vmap_method="sequential")(
        x, kernel, grad)


_pointwise.defvjp(_pointwise_forward, _pointwise_backward)
