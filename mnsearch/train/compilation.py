"""JAX's persistent compilation cache: a shape compiled once is loaded, not compiled, again.

A sweep trial compiles its training step, BN recalibration and evaluation (2-6 s each model on
2 cores); a rerun, a resumed sweep or a second worker training the same shapes loads them from
disk instead. On by default for `mnsearch sweep` and `mnsearch train`, in the `jax` folder of
mnsearch's cache (see `mnsearch.cache`); MNSEARCH_COMPILATION_CACHE=off turns it off, or names
another folder. Every program is cached, however fast it compiled: the small ones are most of
a trial's compile count (JAX's default skips programs that compile in under a second).
"""

from __future__ import annotations

import os
from pathlib import Path

import jax

from mnsearch.cache import cache_folder

ENVIRONMENT = "MNSEARCH_COMPILATION_CACHE"


def compilation_cache_folder() -> Path | None:
    """The folder in use by default: $MNSEARCH_COMPILATION_CACHE, the cache's `jax`, or None."""
    choice = os.environ.get(ENVIRONMENT, "")
    if choice.lower() in ("off", "0", "false", "no"):
        return None
    return Path(choice) if choice else cache_folder("jax")


def enable_compilation_cache(folder: str | Path | None = None) -> Path | None:
    """Turn the persistent cache on (process-wide JAX setting); returns its folder or None."""
    target = Path(folder) if folder is not None else compilation_cache_folder()
    if target is None:
        return None
    target.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(target))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return target
