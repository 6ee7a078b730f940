"""A simulated objective for load tests: the whole sweep machinery, no training.

`mnsearch sweep SPACE --simulate` runs the real worker loop — sampling, building and costing
specs, constraints, never-pay-twice claims, the rung rule, storage writes, several workers —
but `simulate_training` stands in for `train_and_evaluate`, returning instantly with an
accuracy that is a documented noisy function of cost:

    final  = clip(0.55 + 0.05 · ln(Mult-Adds / 10^6) + ε, 1 / classes, 0.99),  ε ~ N(0, 0.02²)
    a(e)   = chance + (final − chance) · (1 − exp(−3e/E)) / (1 − exp(−3))  + N(0, 0.005²)
    test   = final − 0.003 + N(0, 0.003²)

for epoch e of E (so a(E) is `final` up to the per-epoch noise), chance = 1 / classes. The
noise is seeded by the configuration (its spec and recipe), so a configuration always gets
the same curve and a resumed simulated sweep is reproducible. A simulated study is recorded as
such (`StudyRecord.simulated`); reports and the dashboard label it SIMULATED, and export and
finalize refuse it.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from mnsearch.cost import cost
from mnsearch.spec.arch import ArchSpec, spec_to_dict
from mnsearch.train.config import TrainConfig, recipe_identity
from mnsearch.train.loop import EpochCallback, TrainResult

SIMULATED_INT8_DROP = 0.002  # the int8_accuracy objective under --simulate: float minus this


def simulated_accuracy(madds: float, classes: int, noise: float) -> float:
    """The converged accuracy of a model of `madds` Mult-Adds (module docstring)."""
    return float(np.clip(0.55 + 0.05 * math.log(max(madds, 1.0) / 1e6) + noise,
                         1.0 / classes, 0.99))


def simulate_training(spec: ArchSpec, dataset: Any, config: TrainConfig,
                      out_dir: str | Path | None = None, resume: bool = False,
                      callback: EpochCallback | None = None, **_: Any) -> TrainResult:
    """`train_and_evaluate`'s contract (callback per epoch, stop when it says so) without
    training or files: the synthetic curve of the module docstring."""
    identity = json.dumps([spec_to_dict(spec), recipe_identity(config)], sort_keys=True)
    seed = hashlib.sha256(identity.encode()).digest()
    rng = np.random.default_rng(int.from_bytes(seed[:8], "little"))
    chance = 1.0 / spec.num_classes
    final = simulated_accuracy(cost(spec).madds, spec.num_classes, rng.normal(0, 0.02))
    result = TrainResult()
    for epoch in range(config.epochs):
        progress = (1 - math.exp(-3 * (epoch + 1) / config.epochs)) / (1 - math.exp(-3))
        accuracy = chance + (final - chance) * progress + rng.normal(0, 0.005)
        result.val_accuracy.append(float(np.clip(accuracy, 0.0, 1.0)))
        result.train_loss.append(float(-math.log(max(accuracy, 1e-3))))
        result.epochs_done = epoch + 1
        if callback is not None and callback(epoch, result):
            result.status = "stopped"
            return result
    result.status = "completed"
    result.test_accuracy = float(np.clip(final - 0.003 + rng.normal(0, 0.003), 0.0, 1.0))
    return result
