"""Pickle-free, atomic checkpoints of NNX state: one .npz of arrays plus a JSON sidecar.

A checkpoint must survive `kill -9` at any moment (sweeps resume from it) and must be safe to
open when it came from someone else, so: arrays only (`numpy.load(allow_pickle=False)`), written
to a temporary file and renamed into place.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx

from mnsearch.atomic import write_atomically
from mnsearch.errors import MnsearchError

_KEY_SUFFIX = "::key_data"


class CheckpointError(MnsearchError):
    """A checkpoint is missing, corrupted, or does not fit the model it is loaded into."""


def _flatten(state: Any) -> dict[str, np.ndarray]:
    arrays = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        name = jax.tree_util.keystr(path)
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            arrays[name + _KEY_SUFFIX] = np.asarray(jax.random.key_data(leaf))
        else:
            arrays[name] = np.asarray(leaf)
    return arrays


def save_state(path: str | Path, nodes: dict[str, nnx.Module | nnx.Optimizer],
               metadata: dict[str, Any]) -> None:
    """Save the full state of each named node (model, optimizer…) and JSON metadata."""
    path = Path(path)
    arrays = {f"{name}{key}": value for name, node in nodes.items()
              for key, value in _flatten(nnx.state(node)).items()}
    write_atomically(path, lambda stream: np.savez(stream, **arrays))
    text = json.dumps(metadata, indent=2).encode()
    write_atomically(path.with_suffix(".json"), text)


def load_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON sidecar of a checkpoint."""
    sidecar = Path(path).with_suffix(".json")
    try:
        return json.loads(sidecar.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{sidecar}: unreadable checkpoint metadata ({error})") from None


def load_state(path: str | Path, nodes: dict[str, nnx.Module | nnx.Optimizer],
               *filters: Any) -> None:
    """Load arrays saved by `save_state` into `nodes` in place, checking names and shapes.

    With `filters` (e.g. nnx.Param, nnx.BatchStat) only those variables are loaded, so a
    model can take its weights from a checkpoint that also holds optimizer state.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise CheckpointError(f"{path}: not a readable mnsearch checkpoint ({error})") from None
    for name, node in nodes.items():
        state = nnx.state(node, *filters) if filters else nnx.state(node)
        leaves = []
        for key_path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
            key = name + jax.tree_util.keystr(key_path)
            leaves.append(_restored_leaf(path, key, leaf, arrays))
        nnx.update(node, jax.tree_util.tree_unflatten(jax.tree.structure(state), leaves))


def _restored_leaf(path: Path, key: str, leaf: Any, arrays: dict[str, np.ndarray]) -> Any:
    is_key = jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)
    stored = arrays.get(key + _KEY_SUFFIX if is_key else key)
    if stored is None:
        raise CheckpointError(f"{path}: has no entry '{key}': it was saved for another model")
    if is_key:
        return jax.random.wrap_key_data(stored)
    if stored.shape != leaf.shape:
        raise CheckpointError(f"{path}: '{key}' has shape {stored.shape}, the model "
                              f"expects {leaf.shape}")
    return jax.numpy.asarray(stored, dtype=leaf.dtype)
