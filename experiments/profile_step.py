"""Where the training step's time goes on CPU: the XLA kernels of one step, summed by name.

Command: .venv/bin/python experiments/profile_step.py v1 --alpha 0.25 [--resolution 28]
    [--in-channels 1] [--batch-size 128] [--steps 20] [--top 30]

Traces `steps` steady-state steps of `mnsearch.train.benchmark`'s training step with the JAX
profiler, reads the trace back with `jax.profiler.ProfileData` (no TensorBoard needed) and
prints the kernels (XLA fusions, dots, convolutions) with their share of the step, so a
change to `mnsearch.nn.ops` can be aimed at what actually costs time.
"""

from __future__ import annotations

import argparse
import collections
import tempfile
from pathlib import Path

import jax
from jax.profiler import ProfileData

from mnsearch.spec.families import preset
from mnsearch.train.benchmark import step_function

# Python frames (the profiler's Python tracer), runtime wrappers and waits: not XLA kernels.
_NOT_KERNELS = ("$", "ThunkExecutor", "PjitFunction", "ParseArguments", "SlinkyThreadPool",
                "CommonPjRt", "PjRt", "TfrtCpu", "Execute")


def kernel_times(trace_folder: Path) -> tuple[dict[str, float], dict[str, int]]:
    """Total microseconds and launches per kernel name over the host threads."""
    totals: dict[str, float] = collections.defaultdict(float)
    launches: dict[str, int] = collections.defaultdict(int)
    for path in trace_folder.rglob("*.xplane.pb"):
        data = ProfileData.from_file(str(path))
        for plane in data.planes:
            if plane.name != "/host:CPU":
                continue
            for line in plane.lines:
                for event in line.events:
                    if not event.name.startswith(_NOT_KERNELS):
                        totals[event.name] += event.duration_ns / 1e3
                        launches[event.name] += 1
    return totals, launches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("family")
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--resolution", type=int, default=28)
    parser.add_argument("--in-channels", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    spec = preset(args.family, args.alpha, args.resolution, num_classes=10,
                  in_channels=args.in_channels)
    step = step_function(spec, args.batch_size)
    for _ in range(3):
        jax.block_until_ready(step())
    with tempfile.TemporaryDirectory() as folder:
        with jax.profiler.trace(folder):
            for _ in range(args.steps):
                result = step()
            jax.block_until_ready(result)
        totals, launches = kernel_times(Path(folder))
    per_step = {name: micros / args.steps for name, micros in totals.items()}
    kinds: dict[str, float] = collections.defaultdict(float)
    kind_launches: dict[str, float] = collections.defaultdict(float)
    for name, micros in per_step.items():
        kind = name.rstrip("0123456789").rstrip(".")
        kinds[kind] += micros
        kind_launches[kind] += launches[name] / args.steps
    print(f"kernel time per step {sum(per_step.values()) / 1e3:.1f} ms, "
          f"{sum(kind_launches.values()):.0f} launches; by kind (us/step, launches/step):")
    for kind, micros in sorted(kinds.items(), key=lambda item: -item[1])[:args.top]:
        print(f"  {kind[:50]:50s} {micros:9.0f} {kind_launches[kind]:7.0f}")
    print(f"{'kernel':60s} {'us/step':>9s}")
    for name, micros in sorted(per_step.items(), key=lambda item: -item[1])[:args.top]:
        print(f"{name[:60]:60s} {micros:9.0f}")


if __name__ == "__main__":
    main()
