"""XLA:CPU compiler options for the training step, timed against each other in one process.

Command: .venv/bin/python experiments/bench_xla_flags.py [--rounds 5] [--steps 3]

Each variant is the same training step (AdamW, batch 128) compiled with other XLA:CPU debug
options (`.compile(compiler_options=...)`, so one process compares them all, interleaved, and
machine noise hits every variant alike). Prints images/s and the ratio to the default build.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from mnsearch.nn.model import build
from mnsearch.spec.families import preset
from mnsearch.train.config import TrainConfig
from mnsearch.train.loop import _loss, make_optimizer

_FUSION = "LIBRARY_FUSION_TYPE_"
VARIANTS: dict[str, dict[str, object]] = {
    "default": {},
    "ynn_dot": {"xla_cpu_experimental_ynn_fusion_type": _FUSION + "DOT"},
    "ynn_dot_eltwise_reduce": {"xla_cpu_experimental_ynn_fusion_type":
                               f"{_FUSION}DOT,{_FUSION}ELTWISE,{_FUSION}REDUCE"},
    "xnn_dot": {"xla_cpu_experimental_xnn_fusion_type": _FUSION + "DOT"},
    "onednn_dot": {"xla_cpu_experimental_onednn_fusion_type": _FUSION + "DOT"},
    "xnn_graph_greedy": {"xla_cpu_experimental_xnn_graph_fusion_mode":
                         "XNN_GRAPH_FUSION_MODE_GREEDY"},
    "onednn": {"xla_cpu_use_onednn": True},
    "fast_math": {"xla_cpu_enable_fast_math": True},
    "concurrency_scheduler": {"xla_cpu_enable_concurrency_optimized_scheduler": True},
    "single_thread_eigen": {"xla_cpu_multi_thread_eigen": False},
}
ROWS = (("v1", 0.25, 28, 1), ("v2", 0.5, 32, 3))


def compiled_step(name: str, alpha: float, resolution: int, channels: int,
                  options: dict[str, object], batch: int = 128) -> Callable[[], jax.Array]:
    """The functional (split/merge) training step, compiled with `options`."""
    spec = preset(name, alpha, resolution, num_classes=10, in_channels=channels)
    rng = np.random.default_rng(0)
    images = jnp.asarray(rng.normal(size=(batch, resolution, resolution, channels)),
                         jnp.float32)
    labels = jnp.asarray(rng.integers(0, 10, batch), jnp.int32)
    model = build(spec)
    optimizer = nnx.Optimizer(model, make_optimizer(TrainConfig(), 10), wrt=nnx.Param)
    graphdef, state = nnx.split((model, optimizer))

    def step(state: nnx.State, images: jax.Array, labels: jax.Array):
        model, optimizer = nnx.merge(graphdef, state)
        (loss, _), grads = nnx.value_and_grad(_loss, has_aux=True)(model, images, labels,
                                                                    0.1, 10)
        optimizer.update(model, grads)
        return nnx.state((model, optimizer)), loss

    compiled = jax.jit(step).lower(state, images, labels).compile(
        compiler_options=options or None)
    box = [state]

    def run() -> jax.Array:
        box[0], loss = compiled(box[0], images, labels)
        return loss
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    for row in ROWS:
        steps = {tag: compiled_step(*row, options) for tag, options in VARIANTS.items()}
        for run in steps.values():
            jax.block_until_ready(run())
        rates: dict[str, list[float]] = {tag: [] for tag in steps}
        for _ in range(args.rounds):
            for tag, run in steps.items():
                start = time.perf_counter()
                for _ in range(args.steps):
                    loss = run()
                jax.block_until_ready(loss)
                rates[tag].append(args.steps * 128 / (time.perf_counter() - start))
        base = statistics.median(rates["default"])
        print(" ".join(map(str, row)) + ": " + ", ".join(
            f"{tag} {statistics.median(r):.0f} ({statistics.median(r) / base:.2f})"
            for tag, r in rates.items()), flush=True)


if __name__ == "__main__":
    main()
