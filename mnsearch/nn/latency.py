"""Measured inference latency on this machine: the hardware-aware objective of a search.

Mult-Adds predict latency poorly across block types (V3 section 4; depthwise layers are memory-
bound), so MnasNet and MobileNetV3 searched on measured phone latency. mnsearch measures on the
machine running the trial, with the runtime the model will ship on: XLA (the JAX model as
compiled here) or ONNX Runtime (the exported graph). The figure is the median of repeated
calls after warm-up, compile excluded, since the median is what survives a noisy machine.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import jax
import numpy as np

from mnsearch.cost import BYTES_PER_VALUE, cost
from mnsearch.errors import MnsearchError
from mnsearch.nn.model import MobileNet, build, example_images, jitted_forward
from mnsearch.spec.arch import ArchSpec

RUNTIMES = ("xla", "onnxruntime")
MEMORY_FRACTION = 0.5  # of physical memory: the most a latency measurement may need
WEIGHT_COPIES = 3  # see `memory_estimate`


class LatencyError(MnsearchError):
    """A latency measurement that cannot be made as asked."""


@dataclass(frozen=True)
class Latency:
    """Latency of one forward pass of a batch, in milliseconds."""

    latency_ms: float
    p10_ms: float
    p90_ms: float
    repeats: int
    batch_size: int
    runtime: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_latency(spec: ArchSpec, batch_size: int = 1, runtime: str = "xla",
                    repeats: int = 50, warmup: int = 5, model: MobileNet | None = None,
                    threads: int | None = None) -> Latency:
    """Median latency of `model` (or a fresh one: weights do not change the time) for `spec`."""
    if runtime not in RUNTIMES:
        raise LatencyError(f"unknown runtime '{runtime}' (allowed: {', '.join(RUNTIMES)})")
    if batch_size < 1 or repeats < 1 or warmup < 0:
        raise LatencyError("batch size and repeats must be >= 1 and warm-up >= 0")
    check_memory(spec, batch_size)
    model = model if model is not None else build(spec, 0)
    images = example_images(spec, batch_size)
    call = _xla_call(model, images) if runtime == "xla" else \
        _onnxruntime_call(model, spec, images, threads)
    return time_calls(call, repeats, warmup, batch_size, runtime)


def memory_estimate(spec: ArchSpec, batch_size: int) -> int:
    """Bytes a timed forward pass holds, from the exact cost model (no model is built).

    The float32 weights WEIGHT_COPIES times (the NNX model, the compiled call's or the ONNX
    session's copy, the serialised graph), the input batch, and the peak of live activations
    for every image of the batch. A lower bound on what XLA allocates, so the limit is loose.
    """
    totals = cost(spec)
    inputs = batch_size * spec.resolution ** 2 * spec.in_channels * BYTES_PER_VALUE
    return WEIGHT_COPIES * totals.model_bytes + inputs + batch_size * totals.peak_activation_bytes


def memory_limit() -> int | None:
    """MEMORY_FRACTION of physical memory (of the accelerator's, when it has less); None when
    the system does not say how much it has."""
    try:
        host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None
    stats = jax.devices()[0].memory_stats() or {}
    device = stats.get("bytes_limit")
    return int(MEMORY_FRACTION * (min(host, device) if device else host))


def check_memory(spec: ArchSpec, batch_size: int) -> None:
    """Refuse, in one line, a model that would exhaust memory when built and run.

    An enormous α or batch used to be found out by the kernel's out-of-memory killer (or an
    allocator abort) minutes into building the model; the cost model knows the size at once.
    """
    needed, limit = memory_estimate(spec, batch_size), memory_limit()
    if limit is not None and needed > limit:
        raise LatencyError(
            f"{spec.name} α={spec.alpha:g} at {spec.resolution} px, batch {batch_size}, needs "
            f"about {needed / 2**30:,.1f} GiB ({cost(spec).params:,} parameters), more than "
            f"{MEMORY_FRACTION:.0%} of this machine's memory ({limit / 2**30:,.1f} GiB): use a "
            "smaller alpha, resolution or batch size")


def time_calls(call: Callable[[], Any], repeats: int = 50, warmup: int = 5,
               batch_size: int = 1, runtime: str = "xla") -> Latency:
    """Median, p10 and p90 of `repeats` timed calls after `warmup` + 1 untimed ones."""
    for _ in range(warmup + 1):  # the first call compiles
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    p10, median, p90 = np.percentile(times, [10, 50, 90])
    return Latency(float(median), float(p10), float(p90), repeats, batch_size, runtime)


def _xla_call(model: MobileNet, images: np.ndarray) -> Any:
    forward, batch = jitted_forward(model), jax.device_put(images)
    return lambda: forward(batch).block_until_ready()


def _onnxruntime_call(model: MobileNet, spec: ArchSpec, images: np.ndarray,
                      threads: int | None) -> Any:
    from mnsearch.nn.convert import onnx_bytes, onnx_session

    session = onnx_session(onnx_bytes(model, spec), threads)
    return lambda: session.run(None, {"images": images})
