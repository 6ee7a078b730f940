"""Test settings: CPU only, XLA optimisations off (compile time dominates these tiny models)."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")  # inherited by sweep workers

import jax  # noqa: E402

jax.config.update("jax_disable_most_optimizations", True)
