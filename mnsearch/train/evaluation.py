"""Evaluation of a trained model: precise-BN recalibration, top-1 accuracy and loss.

Kept apart from the training loop because every evaluated model (the trained weights, or
their EMA average) goes through the same two steps: recalibrate the BN statistics from
training batches, then predict in eval mode.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from mnsearch.nn.model import MobileNet, eval_view


@nnx.jit
def predict(model: MobileNet, images: jax.Array) -> jax.Array:
    """Class indices of a batch (jitted; pass an eval view for inference)."""
    return jnp.argmax(model(images), -1)


@nnx.jit
def _forward(model: MobileNet, images: jax.Array) -> jax.Array:
    return model(images)


def recalibrate_batch_norm(model: MobileNet, images: np.ndarray, batch_size: int = 256,
                           batches: int = 8) -> None:
    """Set every BN's running statistics to the mean of exact batch statistics ("precise BN").

    Running averages lag the weights: after a few hundred steps (any low-fidelity sweep trial)
    they still mix in their initial values and stale activations, and evaluation collapses to
    chance (measured: every 3-epoch trial of the V1 grid scored 10%). Averaging the batch
    statistics of the current weights over `batches` training batches removes the lag.
    """
    norms = [module for _, module in nnx.iter_modules(model) if isinstance(module, nnx.BatchNorm)]
    momenta = [norm.momentum for norm in norms]
    try:
        for norm in norms:
            norm.momentum = 0.0  # each train-mode forward stores that batch's exact statistics
        view = nnx.view(model, deterministic=True)  # BN in training mode, no dropout
        size = min(batch_size, len(images))
        totals: list[list[jax.Array]] | None = None
        count = 0
        for start in range(0, min(len(images), size * batches) - size + 1, size):
            _forward(view, jnp.asarray(images[start:start + size]))
            current = [[norm.mean[...], norm.var[...]] for norm in norms]
            totals = current if totals is None else \
                [[a + b for a, b in zip(old, new, strict=True)]
                 for old, new in zip(totals, current, strict=True)]
            count += 1
        for norm, (mean, variance) in zip(norms, totals or [], strict=False):
            norm.mean[...] = mean / count
            norm.var[...] = variance / count
    finally:  # an interrupted recalibration must not leave BN frozen at momentum 0
        for norm, momentum in zip(norms, momenta, strict=True):
            norm.momentum = momentum


@dataclass(frozen=True)
class Evaluation:
    """A model on one split: top-1 accuracy, mean cross-entropy, images and throughput, and
    which images it got right (in the split's order), for paired comparisons of two models."""

    accuracy: float
    loss: float
    images: int
    images_per_second: float
    correct: np.ndarray = field(default_factory=lambda: np.zeros(0, bool), repr=False,
                                compare=False)


def evaluate(model: MobileNet, images: np.ndarray, labels: np.ndarray,
             batch_size: int = 500) -> Evaluation:
    """Eval-mode accuracy and loss; the last batch is padded so one shape compiles, and the
    throughput leaves the first (compiling) batch out."""
    view, loss, timed, started = eval_view(model), 0.0, 0, None
    correct = np.zeros(len(images), bool)
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        count = len(batch)
        if count < batch_size:
            batch = np.concatenate([batch, np.repeat(batch[-1:], batch_size - count, 0)])
        logits = np.asarray(_forward(view, jnp.asarray(batch)), np.float64)[:count]
        truth = labels[start:start + count]
        correct[start:start + count] = np.argmax(logits, -1) == truth
        shifted = logits - logits.max(-1, keepdims=True)
        log_probabilities = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
        loss -= float(np.take_along_axis(log_probabilities, truth[:, None], -1).sum())
        if started is None:
            started = time.perf_counter()  # after the first batch: compilation excluded
        else:
            timed += count
    seconds = time.perf_counter() - started if started is not None else 0.0
    total = max(len(images), 1)
    return Evaluation(int(correct.sum()) / total, loss / total, len(images),
                      timed / seconds if timed and seconds > 0 else float("nan"), correct)


def accuracy(model: MobileNet, images: np.ndarray, labels: np.ndarray,
             batch_size: int = 500) -> float:
    """Top-1 accuracy in eval mode (see `evaluate`)."""
    return evaluate(model, images, labels, batch_size).accuracy
