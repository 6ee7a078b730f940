"""Train any spec on an in-memory dataset with Optax: the library behind `mnsearch train`.

One epoch = a seeded permutation of the training split in fixed-size batches (the last partial
batch is dropped so the step compiles once). Validation comes from the training data; the test
split is evaluated once, at the end, for reporting. A run checkpoints after every epoch and
resumes from there with identical results, because the data order, augmentation keys and
dropout keys are all functions of (seed, epoch, step). With `ema_decay`, evaluation, the test
score and the checkpoint's `model` entries are the EMA average of the weights (see
`mnsearch.train.weights`); `--init` starts from the model weights of an earlier run or export.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from mnsearch.nn.model import MobileNet, build
from mnsearch.spec.arch import ArchSpec
from mnsearch.train.checkpoint import load_metadata, load_state, save_state
from mnsearch.train.config import TrainConfig, TrainingError
from mnsearch.train.data import PreparedData, PreparedDataCache, prepare_data
from mnsearch.train.evaluation import accuracy, recalibrate_batch_norm
from mnsearch.train.phases import PHASES, PhaseClock
from mnsearch.train.preprocess import augment
from mnsearch.train.weights import copy_weights, load_weights, update_ema


@dataclass
class TrainResult:
    """What a run measured; `status` is 'completed', 'stopped' (by the callback) or 'failed'."""

    status: str = "running"
    epochs_done: int = 0
    train_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    test_accuracy: float | None = None
    images_per_second: float = 0.0
    train_seconds: float = 0.0
    wall_seconds: float = 0.0
    error: str | None = None
    # Where the wall time went (see PHASES); `train` is steady-state steps only.
    phase_seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


EpochCallback = Callable[[int, TrainResult], bool]
def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> optax.GradientTransformation:
    """Optax optimizer with warmup + schedule; weight decay on kernels only (ndim > 1)."""
    total = config.epochs * steps_per_epoch
    warmup = min(int(config.warmup_epochs * steps_per_epoch), max(total - 1, 0))
    if config.schedule == "cosine":
        schedule = optax.warmup_cosine_decay_schedule(0.0, config.learning_rate, warmup,
                                                      max(total, warmup + 1))
    elif config.schedule == "step":  # V1 paper style: divide by 10 at 1/2 and 3/4 of training
        schedule = optax.piecewise_constant_schedule(
            config.learning_rate, {total // 2: 0.1, 3 * total // 4: 0.1})
    else:
        schedule = optax.constant_schedule(config.learning_rate)
    kernels_only = lambda params: jax.tree.map(lambda p: p.ndim > 1, params)  # noqa: E731
    if config.optimizer == "adamw":
        return optax.adamw(schedule, weight_decay=config.weight_decay, mask=kernels_only)
    decay = optax.add_decayed_weights(config.weight_decay, mask=kernels_only)
    if config.optimizer == "sgd":
        return optax.chain(decay, optax.sgd(schedule, momentum=config.momentum, nesterov=True))
    # RMSprop as in the V1 paper (TF defaults: decay 0.9, momentum 0.9, epsilon 1.0).
    return optax.chain(decay, optax.rmsprop(schedule, decay=0.9, eps=1.0,
                                            momentum=config.momentum))


def _loss(model: MobileNet, images: jax.Array, labels: jax.Array, smoothing: float,
          num_classes: int) -> tuple[jax.Array, jax.Array]:
    logits = model(images).astype(jnp.float32)  # the loss is float32 whatever the compute
    targets = optax.smooth_labels(jax.nn.one_hot(labels, num_classes), smoothing)
    loss = optax.softmax_cross_entropy(logits, targets).mean()
    return loss, jnp.mean(jnp.argmax(logits, -1) == labels)


# Tree mode (graph=False): the model and optimizer share no Variables, so NNX's graph protocol
# (flatten/unflatten of every Variable on each call) is pure overhead; measured here it cost
# 20-40 ms of Python per step, competing with XLA for the 2 cores (+10% img/s at V1 a=0.25).
@nnx.jit(static_argnames=("smoothing", "num_classes", "crop_padding", "flip", "erasing",
                          "ema_decay"), graph=False)
def train_step(model: MobileNet, optimizer: nnx.Optimizer, ema: MobileNet | None,
               images: jax.Array, labels: jax.Array, key: jax.Array, smoothing: float,
               num_classes: int, crop_padding: int, flip: bool, erasing: float = 0.0,
               ema_decay: float | None = None) -> jax.Array:
    """One optimizer step (augmentation on device, EMA update if asked); returns the loss."""
    if crop_padding or flip or erasing:
        images = augment(images, key, crop_padding=crop_padding, flip=flip, erasing=erasing)
    grad_fn = nnx.value_and_grad(_loss, has_aux=True)
    (loss, _), grads = grad_fn(model, images, labels, smoothing, num_classes)
    optimizer.update(model, grads)
    if ema is not None and ema_decay is not None:
        update_ema(ema, model, ema_decay, optimizer.step[...])
    return loss


def release_compiled_programs() -> None:
    """Free the XLA programs of finished runs; call between runs in a long-lived process.

    JAX keeps every compiled program, and each holds ~2,000 memory maps on CPU: a sweep worker
    that trained 26 differently shaped models hit Linux's 65,530-map limit and died in LLVM
    ("Cannot allocate memory"). Measured: maps stay at ~550 when this runs after each model.
    """
    jax.clear_caches()
    gc.collect()


def train_and_evaluate(spec: ArchSpec, dataset: Any, config: TrainConfig,
                       out_dir: str | Path | None = None, resume: bool = False,
                       callback: EpochCallback | None = None,
                       progress: Callable[[dict[str, Any]], None] | None = None,
                       init: str | Path | None = None,
                       data_cache: PreparedDataCache | None = None) -> TrainResult:
    """Train `spec` on `dataset` (see `mnsearch.data.datasets`) and return its metrics.

    `init` (a .npz or a folder, see `train.weights.load_weights`) sets the starting weights;
    a resumed checkpoint overrides it. `data_cache` reuses prepared arrays across runs (a
    sweep worker passes one). Never raises for a diverging run: a NaN/inf loss ends it with
    status 'failed' and the reason.
    """
    started = time.perf_counter()
    clock = PhaseClock()
    if config.bn_momentum is not None:
        spec = spec.replace(bn_momentum=config.bn_momentum)
    data = data_cache.get(spec, dataset, config) if data_cache else \
        prepare_data(spec, dataset, config)
    steps = len(data.train_labels) // config.batch_size
    if steps == 0:
        raise TrainingError(f"batch size {config.batch_size} is larger than the "
                            f"{len(data.train_labels)} training images: lower --batch-size")
    model, ema = _build_models(spec, config, init)
    evaluated = model if ema is None else ema
    optimizer = nnx.Optimizer(model, make_optimizer(config, steps), wrt=nnx.Param)
    nodes = {"model": model, "optimizer": optimizer} if ema is None else \
        {"model": ema, "raw_model": model, "optimizer": optimizer}  # `model`: what is evaluated
    result, checkpoint = TrainResult(), Path(out_dir) / "checkpoint.npz" if out_dir else None
    if resume and checkpoint is not None and checkpoint.exists():
        load_state(checkpoint, nodes)
        result = TrainResult(**load_metadata(checkpoint)["result"])
    clock.lap("setup")
    first_epoch = result.epochs_done
    for epoch in range(first_epoch, config.epochs):
        loss, seconds, compile_seconds = _run_epoch(model, optimizer, ema, data, config, epoch,
                                                    steps, progress, epoch == first_epoch)
        clock.add("compile", compile_seconds)
        clock.lap("train", minus=compile_seconds)
        result.train_seconds += seconds
        result.images_per_second = steps * config.batch_size / seconds
        if not math.isfinite(loss):
            result.status, result.error = "failed", f"loss became {loss} in epoch {epoch + 1}"
            break
        result.train_loss.append(loss)
        if config.precise_bn:
            recalibrate_batch_norm(evaluated, data.train_images)
        result.val_accuracy.append(accuracy(evaluated, data.val_images, data.val_labels))
        result.epochs_done = epoch + 1
        clock.lap("evaluate")
        if checkpoint is not None:
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            save_state(checkpoint, nodes, {"result": result.as_dict(), "config": asdict(config),
                                           "input": data.contract.as_dict()})
            clock.lap("checkpoint")
        if callback is not None and callback(epoch, result):
            result.status = "stopped"
            break
        clock.lap("callback")
    if result.status == "running":
        result.status = "completed"
    if result.status == "completed":  # a stopped (early-stopped) run is not worth reporting
        result.test_accuracy = accuracy(evaluated, data.test_images, data.test_labels)
        clock.lap("evaluate")
    result.wall_seconds = time.perf_counter() - started
    result.phase_seconds = clock.merged(result.phase_seconds)
    return result


def _build_models(spec: ArchSpec, config: TrainConfig,
                  init: str | Path | None) -> tuple[MobileNet, MobileNet | None]:
    """The trained model (from `init` if given) and its EMA copy (None without EMA)."""
    model = build(spec, config.seed, config.compute_dtype)
    if init is not None:
        load_weights(model, init)
    if config.ema_decay is None:
        return model, None
    ema = build(spec, config.seed, config.compute_dtype)
    copy_weights(model, ema)
    return model, ema


def _run_epoch(model: MobileNet, optimizer: nnx.Optimizer, ema: MobileNet | None,
               data: PreparedData, config: TrainConfig, epoch: int, steps: int,
               progress: Callable[[dict[str, Any]], None] | None,
               compiles: bool) -> tuple[float, float, float]:
    """One pass over the shuffled training split: (mean loss, seconds, compile seconds).

    The first step of a run is timed on its own (it compiles): its excess over a steady step
    is the compile time, so `train` in the phase accounting is steady-state steps only.
    """
    order = np.random.default_rng([config.seed, epoch]).permutation(len(data.train_labels))
    epoch_key = jax.random.fold_in(jax.random.key(config.seed), epoch)
    losses, start, first_step = [], time.perf_counter(), 0.0
    for step in range(steps):
        batch = order[step * config.batch_size:(step + 1) * config.batch_size]
        loss = train_step(model, optimizer, ema, data.train_images[batch],
                           data.train_labels[batch], jax.random.fold_in(epoch_key, step),
                           config.label_smoothing, data.num_classes,
                           config.crop_padding if config.augment else 0,
                           config.flip and config.augment, config.erasing, config.ema_decay)
        losses.append(loss)
        if step == 0 and compiles:
            loss.block_until_ready()
            first_step = time.perf_counter() - start
        if progress is not None:
            progress({"epoch": epoch + 1, "step": step + 1, "steps": steps,
                      "loss": float(loss)})
    mean_loss = float(jnp.mean(jnp.stack(losses)))
    seconds = time.perf_counter() - start
    compile_seconds = 0.0
    if first_step and steps > 1:
        steady = (seconds - first_step) / (steps - 1)
        compile_seconds = max(first_step - steady, 0.0)
    return mean_loss, seconds - compile_seconds, compile_seconds
