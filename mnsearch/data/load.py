"""One entry point for every data source: `load_dataset('fashion-mnist' | 'cifar10:PATH' | ...)`."""

from __future__ import annotations

from pathlib import Path

from mnsearch.data import folders, readers
from mnsearch.data.datasets import SOURCE_FORMS, Dataset, DatasetError


def load_dataset(source: str, data_dir: str | Path | None = None, *,
                 download: bool = False) -> Dataset:
    """Load `source`: 'fashion-mnist', 'cifar10:PATH' or 'folder:PATH'.

    `data_dir` and `download` apply to Fashion-MNIST only (the folder holding its four .gz
    files; whether to fetch them when they are nowhere to be found).
    """
    kind, separator, path = source.partition(":")
    if source == "fashion-mnist":
        return readers.read_fashion_mnist(data_dir, download=download)
    if separator and path and kind == "cifar10":
        return readers.read_cifar10(Path(path).expanduser())
    if separator and path and kind == "folder":
        return folders.read_image_folder(Path(path).expanduser())
    raise DatasetError(f"unknown dataset '{source}': allowed are {SOURCE_FORMS}")
