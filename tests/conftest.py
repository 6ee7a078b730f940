"""Test settings: CPU only, XLA optimisations off (compile time dominates these tiny models)."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")  # inherited by sweep workers

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

jax.config.update("jax_disable_most_optimizations", True)


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """Four classes of 12x12 grayscale squares, 30 images each: a dataset that trains in seconds."""
    root = tmp_path_factory.mktemp("toy")
    rng = np.random.default_rng(0)
    for label in range(4):
        (root / f"class{label}").mkdir()
        for index in range(30):
            image = rng.integers(0, 60, (12, 12), dtype=np.uint8)
            row, column = divmod(label, 2)
            image[row * 6:(row + 1) * 6, column * 6:(column + 1) * 6] += 150
            Image.fromarray(image).save(root / f"class{label}" / f"{index}.png")
    return root


def _storage_url(kind: str, folder: str) -> str:
    """A storage of `kind` in `folder`: a journal file, a SQLite database, or the PostgreSQL
    server of MNSEARCH_TEST_POSTGRES (.ci/run starts one; the test is skipped without it)."""
    if kind == "journal":
        return os.path.join(folder, "studies.journal")
    if kind == "sqlite":
        return f"sqlite:///{folder}/studies.db"
    url = os.environ.get("MNSEARCH_TEST_POSTGRES")
    if not url:
        pytest.skip("set MNSEARCH_TEST_POSTGRES=postgresql://… (.ci/run starts a server)")
    return url


@pytest.fixture(scope="session")
def storage_url():
    """`storage_url(kind, folder)`: journal, sqlite or postgresql (see `_storage_url`)."""
    return _storage_url
