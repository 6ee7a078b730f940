"""Where a run's wall time goes, by phase (no JAX: results and reports read the names).

`setup` (data preparation, model and optimizer), `compile` (the first training step's excess
over a steady one), `train` (steady-state training steps only), `evaluate` (BN recalibration,
validation and test accuracy, their compiles included), `checkpoint`, `callback` (the sweep's
early-stopping decision and storage writes). A sweep adds `other`: trial time outside the run.
"""

from __future__ import annotations

import time

PHASES = ("setup", "compile", "train", "evaluate", "checkpoint", "callback")


class PhaseClock:
    """Seconds per phase of a run: each `lap` charges the time since the last one to a phase."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.last = time.perf_counter()

    def lap(self, phase: str, minus: float = 0.0) -> None:
        now = time.perf_counter()
        self.seconds[phase] += max(now - self.last - minus, 0.0)
        self.last = now

    def add(self, phase: str, seconds: float) -> None:
        self.seconds[phase] += seconds

    def merged(self, earlier: dict[str, float]) -> dict[str, float]:
        """These phases added to those of an earlier (resumed) part of the run."""
        return {phase: earlier.get(phase, 0.0) + self.seconds[phase] for phase in PHASES}
