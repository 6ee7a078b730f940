"""Weights a run evaluates or starts from: the exponential moving average (EMA) of the
parameters, and `--init` (model weights of an earlier run or export, without its optimizer).

Kept out of `train.py` so the training loop stays one screen of control flow; both pieces are
small, but each has a rule worth stating once (the EMA warm-up, which files `--init` accepts).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from mnsearch.nn.model import MobileNet
from mnsearch.train.checkpoint import CheckpointError, load_state

WEIGHT_FILES = ("weights.npz", "checkpoint.npz")  # an export's, then a sweep's or run's
_WEIGHTS = (nnx.Param, nnx.BatchStat)  # what --init copies: not the dropout RNG, not Adam


def ema_decay_at(decay: float, step: jax.Array) -> jax.Array:
    """The decay used after `step` optimizer steps: min(decay, (1 + t) / (10 + t)).

    A fixed decay of 0.999 keeps ~37% of the random initialisation after 1,000 steps, more than
    a whole low-fidelity sweep trial takes; the warm-up (TF's `num_updates` rule, also timm's)
    lets the average follow the weights early and settle to `decay` after ~10 / (1 - decay)
    steps. The step comes from the optimizer, so a resumed run continues the same sequence.
    """
    step = jnp.asarray(step, jnp.float32)
    return jnp.minimum(decay, (1.0 + step) / (10.0 + step))


def update_ema(ema: MobileNet, model: MobileNet, decay: float, step: jax.Array) -> None:
    """ema ← d · ema + (1 − d) · params, for the trainable parameters only (in place).

    `optax.incremental_update` is exactly this Polyak average on a pytree. `optax.ema` is not
    used: it is a GradientTransformation that averages *updates* (with debiasing) and would
    hold a second copy of the average in optimizer state; the average here must be a model
    that evaluation, checkpoints and exports can use as it is. BatchNorm statistics are not
    averaged: precise BN recalibrates them for the averaged weights before every evaluation.
    """
    rate = 1.0 - ema_decay_at(decay, step)
    params, averaged = nnx.state(model, nnx.Param), nnx.state(ema, nnx.Param)
    nnx.update(ema, optax.incremental_update(params, averaged, rate))


def copy_weights(source: MobileNet, target: MobileNet) -> None:
    """Give `target` the parameters and BN statistics of `source` (same spec)."""
    nnx.update(target, jax.tree.map(jnp.array, nnx.state(source, _WEIGHTS)))


def weights_file(path: str | Path) -> Path:
    """The .npz that `--init PATH` means: the file itself, or a folder's weights/checkpoint."""
    path = Path(path)
    if path.is_dir():
        for name in WEIGHT_FILES:
            if (path / name).is_file():
                return path / name
        raise CheckpointError(f"{path}: folder holds neither {' nor '.join(WEIGHT_FILES)}")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weights file (expected an .npz written by "
                              "`mnsearch train`, a sweep or an export, or its folder)")
    return path


def load_weights(model: MobileNet, path: str | Path) -> Path:
    """Load the `model` entries (parameters and BN statistics) of a saved .npz into `model`.

    Accepts a run's or sweep trial's `checkpoint.npz` (its optimizer entries are ignored) and
    an export's `weights.npz`, or a folder holding one. Returns the file read. Raises
    CheckpointError naming the file and the first entry that is missing or has another shape.
    """
    file = weights_file(path)
    load_state(file, {"model": model}, _WEIGHTS)
    return file
