"""The persistent compilation cache: a second process training the same shapes compiles nothing.

JAX's cache can miss silently (a key that changes between processes, a program below the
minimum compile time), so this counts JAX's own monitoring events in a fresh process.
"""

import json
import os
import subprocess
import sys
import textwrap

from mnsearch.train.compilation import compilation_cache_folder

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    from jax import monitoring
    counts = {"hits": 0, "misses": 0}
    def listen(event, **kwargs):
        if event == "/jax/compilation_cache/cache_hits":
            counts["hits"] += 1
        elif event == "/jax/compilation_cache/cache_misses":
            counts["misses"] += 1
    monitoring.register_event_listener(listen)
    from mnsearch.data.datasets import Dataset
    from mnsearch.spec.families import preset
    from mnsearch.train.compilation import enable_compilation_cache
    from mnsearch.train.config import TrainConfig
    from mnsearch.train.loop import train_and_evaluate
    enable_compilation_cache(sys.argv[1])
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (96, 16, 16, 1)).astype(np.uint8)
    labels = (np.arange(96) % 2).astype(np.int32)
    dataset = Dataset("toy", images[:64], labels[:64], images[64:], labels[64:], ("a", "b"))
    spec = preset("v1", 0.25, 16, num_classes=2, in_channels=1, stride_schedule="cifar")
    result = train_and_evaluate(spec, dataset, TrainConfig(epochs=1, batch_size=16))
    print(json.dumps({**counts, "status": result.status}))
""")


def _train_in_new_process(cache):
    environment = {**os.environ, "JAX_PLATFORMS": "cpu"}
    output = subprocess.run([sys.executable, "-c", SCRIPT, str(cache)], capture_output=True,
                            text=True, timeout=600, env=environment, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def test_second_process_compiles_nothing_new(tmp_path):
    first = _train_in_new_process(tmp_path / "cache")
    assert first["status"] == "completed" and first["misses"] > 0
    second = _train_in_new_process(tmp_path / "cache")
    assert second["status"] == "completed"
    assert second["misses"] == 0 and second["hits"] >= first["misses"]


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MNSEARCH_COMPILATION_CACHE", "off")
    assert compilation_cache_folder() is None
    monkeypatch.setenv("MNSEARCH_COMPILATION_CACHE", str(tmp_path))
    assert compilation_cache_folder() == tmp_path
    monkeypatch.delenv("MNSEARCH_COMPILATION_CACHE")
    monkeypatch.setenv("MNSEARCH_CACHE_DIR", str(tmp_path))
    assert compilation_cache_folder() == tmp_path / "jax"
