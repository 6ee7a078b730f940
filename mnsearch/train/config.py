"""The training recipe (`TrainConfig`): every knob of a run, validated, with no JAX import.

The CLI, search spaces and the sweep worker all build recipes from here, so a default lives in
one place; `config_from_settings` turns `key=value` text (the CLI's `--set`) into a recipe
with the field named in any error.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mnsearch.errors import MnsearchError

OPTIMIZERS = ("adamw", "sgd", "rmsprop")
SCHEDULES = ("cosine", "step", "constant")
COMPUTE_DTYPES = ("float32", "bfloat16")
# Fields added after recipes began to be recorded (in configuration keys, trial records, final
# studies), each with the value that trains exactly as before the field existed. A recipe at
# that value is identified without the field (`recipe_identity`), so a study or a final study
# started before the field was added resumes without training anything twice; a new field
# joins this table with the default that keeps old runs unchanged.
ADDED_FIELDS: dict[str, Any] = {"erasing": 0.0, "split_seed": None}


class TrainingError(MnsearchError):
    """A training configuration or run that cannot go on (bad config, NaN loss)."""


@dataclass(frozen=True)
class TrainConfig:
    """Recipe of one run. Defaults: AdamW 2e-3 with cosine decay, as measured here to work."""

    epochs: int = 10
    batch_size: int = 64  # 10 epochs at 64 beat 128 (README: 90.40% vs 89.15% for V2)
    optimizer: str = "adamw"
    learning_rate: float = 2e-3
    weight_decay: float = 0.05
    momentum: float = 0.9
    warmup_epochs: float = 1.0
    schedule: str = "cosine"
    label_smoothing: float = 0.1
    seed: int = 0
    validation_fraction: float = 0.1
    # The seed that draws the validation split and the subset; None: `seed`. Runs of one model
    # under several seeds share a validation split only with this fixed, and only then can
    # they be compared image by image (`mnsearch evaluate --against`).
    split_seed: int | None = None
    subset: float | None = None
    augment: bool = True
    crop_padding: int = 2
    flip: bool = True
    # Random erasing (Zhong et al. 2017), the probability that a training image gets a random
    # rectangle set to the mean; 0 is off. Its own switch: `augment` covers crops and flips.
    erasing: float = 0.0
    # Keras' V2/V3 momentum 0.999 averages BN statistics over ~1000 steps: right for ImageNet
    # schedules, but after a few epochs here the running statistics are still mostly their
    # initial values and evaluation collapses to chance (measured: V2 on Fashion-MNIST, 10%
    # validation accuracy after 5 epochs). Training uses this momentum; None keeps the spec's.
    bn_momentum: float | None = 0.99
    # Before each evaluation, replace BN running statistics by exact batch statistics of the
    # current weights (see train.evaluation.recalibrate_batch_norm). Short runs need it at
    # momentum 0.99; at 0.9 the running statistics follow the weights by themselves.
    precise_bn: bool = True
    # Evaluate (and checkpoint as `model`) an exponential moving average of the weights.
    ema_decay: float | None = None
    # Activations and conv/matmul inputs in this dtype; parameters and the loss stay float32.
    compute_dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise TrainingError(f"unknown optimizer '{self.optimizer}' "
                                f"(allowed: {', '.join(OPTIMIZERS)})")
        if self.schedule not in SCHEDULES:
            raise TrainingError(f"unknown schedule '{self.schedule}' "
                                f"(allowed: {', '.join(SCHEDULES)})")
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise TrainingError("epochs and batch size must be >= 1 and the learning rate > 0")
        if self.bn_momentum is not None and not 0.0 < self.bn_momentum < 1.0:
            raise TrainingError("bn_momentum must be in (0, 1) (Flax convention: 1 - PyTorch's)")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise TrainingError("label_smoothing must be in [0, 1)")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise TrainingError("ema_decay must be in (0, 1), e.g. 0.999")
        if self.compute_dtype not in COMPUTE_DTYPES:
            raise TrainingError(f"unknown compute_dtype '{self.compute_dtype}' "
                                f"(allowed: {', '.join(COMPUTE_DTYPES)})")
        self._check_ranges()

    def _check_ranges(self) -> None:
        """Finite numbers in range: a NaN learning rate would train to NaN after compiling."""
        for name in ("learning_rate", "weight_decay", "momentum", "warmup_epochs",
                     "validation_fraction", "erasing"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value):
                raise TrainingError(f"{name} must be a finite number, got {value!r}")
        if self.weight_decay < 0 or self.warmup_epochs < 0 or not 0 <= self.momentum < 1:
            raise TrainingError("weight_decay and warmup_epochs must be >= 0, momentum in [0, 1)")
        if not 0.0 < self.validation_fraction < 1.0:
            raise TrainingError(f"validation_fraction must be in (0, 1), got "
                                f"{self.validation_fraction!r}")
        if not 0 <= self.seed < 2**32 or self.crop_padding < 0:
            raise TrainingError("seed must be in 0 .. 2**32 - 1 and crop_padding >= 0")
        if self.split_seed is not None and not 0 <= self.split_seed < 2**32:
            raise TrainingError(f"split_seed must be in 0 .. 2**32 - 1 (or none: seed), got "
                                f"{self.split_seed!r}")
        if not 0.0 <= self.erasing <= 1.0:
            raise TrainingError(f"erasing must be a probability in [0, 1] (0: off), got "
                                f"{self.erasing!r}")

    @property
    def data_seed(self) -> int:
        """The seed of the validation split and the subset (`split_seed`, else `seed`)."""
        return self.seed if self.split_seed is None else self.split_seed


def recipe_fields() -> dict[str, str]:
    """Every `TrainConfig` field and its type as text (for help messages and errors)."""
    return {field.name: str(field.type) for field in dataclasses.fields(TrainConfig)}


def recipe_identity(config: TrainConfig) -> dict[str, Any]:
    """The recipe as it identifies a run: every field, less the added fields at their old value.

    Configuration keys hash this rather than `asdict(config)`, so adding a field to
    `TrainConfig` (with a default that trains as before) changes no recorded key.
    """
    return {name: value for name, value in dataclasses.asdict(config).items()
            if not (name in ADDED_FIELDS and value == ADDED_FIELDS[name])}


def with_added_fields(recipe: Mapping[str, Any]) -> dict[str, Any]:
    """A recorded recipe completed by the fields added since it was recorded, at the values
    it trained with (for comparing it with a recipe of today)."""
    return {**ADDED_FIELDS, **recipe}


def parse_settings(settings: Iterable[str]) -> dict[str, Any]:
    """`['epochs=20', 'ema_decay=0.999', 'augment=false']` -> typed values per field.

    Numbers and booleans are converted by the field's type; `none` clears an optional field.
    """
    fields = recipe_fields()
    values: dict[str, Any] = {}
    for setting in settings:
        name, separator, text = setting.partition("=")
        name = name.strip().replace("-", "_")
        if not separator or name not in fields:
            raise TrainingError(f"--set {setting!r}: expected KEY=VALUE with KEY one of "
                                f"{', '.join(fields)}")
        values[name] = _convert(name, fields[name], text.strip())
    return values


def config_from_settings(base: Mapping[str, Any] | None = None,
                         settings: Iterable[str] = ()) -> TrainConfig:
    """A recipe from `base` values overridden by `key=value` settings (both validated)."""
    values = dict(base or {})
    values.update(parse_settings(settings))
    try:
        return TrainConfig(**values)
    except TypeError as error:
        raise TrainingError(f"recipe: {error}") from None


def _convert(name: str, kind: str, text: str) -> Any:
    if text.lower() in ("none", "null") and "None" in kind:
        return None
    try:
        if kind.startswith("bool"):
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return text.lower() in ("true", "1", "yes")
        if kind.startswith("int"):
            return int(text)
        if kind.startswith("float"):  # a whole number stays an int (a subset count)
            number = int(text) if text.lstrip("-").isdigit() else float(text)
            if number != number or number in (float("inf"), float("-inf")):
                raise ValueError(text)
            return number
    except ValueError:
        raise TrainingError(f"--set {f'{name}={text}'!r}: expected {kind}") from None
    return text
