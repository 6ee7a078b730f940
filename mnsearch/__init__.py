"""mnsearch: explore the MobileNet design space (specs, exact cost, NNX models, sweeps).

`import mnsearch` stays JAX-free: the spec layer loads eagerly, and the names that need JAX,
Flax or pandas (`build`, `from_keras`, `cost`, …) load on first use.
"""

from importlib import import_module
from typing import Any

from mnsearch.arch import (
    ArchSpec,
    BlockSpec,
    HeadSpec,
    SpecError,
    format_block,
    make_divisible,
    parse_block,
    spec_from_dict,
    spec_to_dict,
)
from mnsearch.families import PRESETS, preset

_LAZY = {
    "cost": "mnsearch.cost", "layer_table": "mnsearch.cost", "cost_by_op": "mnsearch.cost",
    "build": "mnsearch.model", "eval_view": "mnsearch.model", "MobileNet": "mnsearch.model",
    "from_keras": "mnsearch.keras_interop", "load_spec": "mnsearch.specfile",
    "save_spec": "mnsearch.specfile", "load_dataset": "mnsearch.datasets",
    "train_and_evaluate": "mnsearch.train", "TrainConfig": "mnsearch.train",
    "load_space": "mnsearch.space", "run_sweep": "mnsearch.sweep",
    "SweepOptions": "mnsearch.search", "trials_frame": "mnsearch.results",
    "load": "mnsearch.export",
    "measure_latency": "mnsearch.latency",
}

__all__ = ["ArchSpec", "BlockSpec", "HeadSpec", "SpecError", "PRESETS", "format_block",
           "make_divisible", "parse_block", "preset", "spec_from_dict", "spec_to_dict", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mnsearch' has no attribute '{name}'")
