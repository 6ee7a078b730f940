"""mnsearch: explore the MobileNet design space (specs, exact cost, NNX models, sweeps).

`import mnsearch` stays JAX-free: the spec layer and `cost` load eagerly (0.15 s), and the
names that need JAX, Flax, pandas or Optuna (`build`, `from_keras`, `layer_table`, …) load on
first use.
"""

from importlib import import_module
from typing import Any

from mnsearch.cost import cost  # eager: the package attribute must be the function, not the module
from mnsearch.spec.arch import ArchSpec, spec_from_dict, spec_to_dict
from mnsearch.spec.blocks import (
    BlockSpec,
    HeadSpec,
    SpecError,
    format_block,
    make_divisible,
    parse_block,
)
from mnsearch.spec.families import PRESETS, preset

_LAZY = {  # name -> module, imported on first use (JAX, Flax, pandas, Optuna)
    "layer_table": "mnsearch.cost",
    "cost_by_op": "mnsearch.cost",
    "load_spec": "mnsearch.spec.io",
    "save_spec": "mnsearch.spec.io",
    "build": "mnsearch.nn.model",
    "eval_view": "mnsearch.nn.model",
    "MobileNet": "mnsearch.nn.model",
    "from_keras": "mnsearch.nn.keras",
    "measure_latency": "mnsearch.nn.latency",
    "load_dataset": "mnsearch.data.load",
    "train_and_evaluate": "mnsearch.train.loop",
    "TrainConfig": "mnsearch.train.config",
    "load_space": "mnsearch.search.space",
    "run_sweep": "mnsearch.search.runner",
    "SweepOptions": "mnsearch.search.study",
    "trials_frame": "mnsearch.results.frames",
    "load": "mnsearch.export.loading",
}

__all__ = ["ArchSpec", "cost", "BlockSpec", "HeadSpec", "SpecError", "PRESETS", "format_block",
           "make_divisible", "parse_block", "preset", "spec_from_dict", "spec_to_dict", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mnsearch' has no attribute '{name}'")
