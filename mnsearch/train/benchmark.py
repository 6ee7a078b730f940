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


def throughput(spec: ArchSpec, batch_size: int = 128, mode: str = "train", steps: int = 10,
               repeats: int = 3, warmup: int = 2) -> float:
    """Median images/s over `repeats` runs of `steps` steps each, after `warmup` steps."""
    if batch_size < 1 or steps < 1:
        raise ValueError("batch size and steps must be >= 1")
    step = step_function(spec, batch_size, mode)
    for _ in range(warmup):
        jax.block_until_ready(step())
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            result = step()
        jax.block_until_ready(result)
        rates.append(steps * batch_size / (time.perf_counter() - start))
    return statistics.median(rates)
