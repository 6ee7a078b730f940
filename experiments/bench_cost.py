"""How fast the JAX-free cost model is: specs per second for each preset.

Command: `.venv/bin/python experiments/bench_cost.py` (a few seconds). It prints, per preset,
the time to build the spec and count it, and checks that importing the spec layer pulled in no
JAX. Samplers call this inside every trial, so it must stay far below a millisecond.
"""

from __future__ import annotations

import sys
import time

from mnsearch.cost import cost
from mnsearch.spec.families import PRESETS, preset


def _per_second(function, seconds: float = 0.5) -> float:
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        function()
        count += 1
    return count / (time.perf_counter() - start)


def main() -> None:
    assert "jax" not in sys.modules, "the spec layer must not import JAX"
    print(f"{'preset':<18}{'cost only /s':>14}{'preset+cost /s':>16}{'µs per cost':>13}")
    for name in PRESETS:
        spec = preset(name, 0.75, 160)
        only_cost = _per_second(lambda spec=spec: cost(spec))
        with_build = _per_second(lambda name=name: cost(preset(name, 0.75, 160)))
        print(f"{name:<18}{only_cost:>14,.0f}{with_build:>16,.0f}{1e6 / only_cost:>13.1f}")
    print(f"jax imported: {'jax' in sys.modules}")


if __name__ == "__main__":
    main()
