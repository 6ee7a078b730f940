"""Steady-state throughput of a spec: images per second for a training step or inference.

Compilation and the first steps are excluded (warm-up); the figure is the median over timed
repeats, because these machines are noisy. The training step is the one `train_and_evaluate`
runs, so the number predicts a sweep's cost.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from mnsearch.nn.model import build, eval_view, example_images
from mnsearch.spec.arch import ArchSpec
from mnsearch.train.config import TrainConfig
from mnsearch.train.evaluation import predict
from mnsearch.train.loop import make_optimizer, train_step

MODES = ("train", "infer")


def step_function(spec: ArchSpec, batch_size: int = 128, mode: str = "train",
                  kernels: str = "auto") -> Callable[[], jax.Array]:
    """One training step (or inference batch) of `spec` on fixed random data, per call;
    `kernels` fixes the model's kernel choice (mnsearch.nn.ops), to compare them."""
    if mode not in MODES:
        raise ValueError(f"unknown mode '{mode}' (allowed: {', '.join(MODES)})")
    images = jnp.asarray(example_images(spec, batch_size))
    labels = jnp.asarray(np.random.default_rng(1).integers(0, spec.num_classes, batch_size),
                         jnp.int32)
    model = build(spec, kernels=kernels)
    if mode == "infer":
        view = eval_view(model)
        return lambda: predict(view, images)
    optimizer = nnx.Optimizer(model, make_optimizer(TrainConfig(), 10), wrt=nnx.Param)
    key = jax.random.key(0)
    return lambda: train_step(model, optimizer, None, images, labels, key, 0.1,
                               spec.num_classes, 0, False)


def interleaved(steps: dict[str, Callable[[], jax.Array]], count: int, repeats: int,
                batch_size: int = 128, warmup: int = 2) -> dict[str, float]:
    """Median images/s of each step function, timed in alternation (a, b, a, b, ...) after
    `warmup` calls each, so the drift of a noisy VM falls on every entry alike and their ratios
    hold even when the absolute figures do not."""
    if count < 1 or repeats < 1 or batch_size < 1:
        raise ValueError("steps, repeats and batch size must be >= 1")
    for step in steps.values():
        for _ in range(warmup):
            jax.block_until_ready(step())
    rates: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(count):
                result = step()
            jax.block_until_ready(result)
            rates[name].append(count * batch_size / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in rates.items()}


def throughput(spec: ArchSpec, batch_size: int = 128, mode: str = "train", steps: int = 10,
               repeats: int = 3, warmup: int = 2) -> float:
    """Median images/s over `repeats` runs of `steps` steps each, after `warmup` steps."""
    if batch_size < 1 or steps < 1:
        raise ValueError("batch size and steps must be >= 1")
    step = step_function(spec, batch_size, mode)
    return interleaved({"step": step}, steps, repeats, batch_size, warmup)["step"]
