"""Turn a dataset into the arrays one training run needs: split, subset, normalised, resized.

Kept apart from the training loop so the loop never sees uint8 pixels or a test image, and so
a sweep worker prepares a dataset once per (resolution, recipe) with `PreparedDataCache`
instead of once per trial (the paper grid has 16 trials at 4 resolutions).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np

from mnsearch.data.contract import InputContract
from mnsearch.data.datasets import DatasetError, split_validation, stratified_subset
from mnsearch.spec.arch import ArchSpec
from mnsearch.train.preprocess import channel_statistics, normalize, resize

_CHUNK = 4096  # images normalised/resized per device call, to bound memory


@dataclass(frozen=True)
class PreparedData:
    """Float32 NHWC arrays at the spec's resolution, normalised with train-split statistics."""

    train_images: np.ndarray
    train_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    num_classes: int
    contract: InputContract  # how raw pixels become these arrays (saved with checkpoints)


def prepare_data(spec: ArchSpec, dataset: Any, config: Any) -> PreparedData:
    """Validation split from the training data, optional stratified subset, normalise, resize."""
    if dataset.in_channels != spec.in_channels or dataset.num_classes != spec.num_classes:
        raise DatasetError(
            f"dataset '{dataset.name}' has {dataset.in_channels} channels and "
            f"{dataset.num_classes} classes, the spec {spec.in_channels} and "
            f"{spec.num_classes}: build the spec with --in-channels {dataset.in_channels} "
            f"--classes {dataset.num_classes}")
    (train_images, train_labels), validation = training_split(dataset, config)
    mean, std = channel_statistics(train_images)

    def convert(images: np.ndarray) -> np.ndarray:
        return normalized_and_resized(images, mean, std, spec.resolution)

    return PreparedData(convert(train_images), np.asarray(train_labels, np.int32),
                        convert(validation.images), np.asarray(validation.labels, np.int32),
                        convert(dataset.test_images), np.asarray(dataset.test_labels, np.int32),
                        dataset.num_classes,
                        InputContract.of_statistics(spec.resolution, mean, std,
                                                    dataset.image_size))


def training_split(dataset: Any, config: Any) -> tuple[tuple[np.ndarray, np.ndarray], Any]:
    """((images, labels) a run trains on, its validation split): the recipe's validation
    fraction and subset, drawn with its seed (so an export can draw them again)."""
    train, validation = split_validation(dataset, config.validation_fraction, config.data_seed)
    images, labels = train.images, train.labels
    if config.subset is not None:
        images, labels = stratified_subset(images, labels, config.subset, config.data_seed)
    return (images, labels), validation


def training_contract(spec: ArchSpec, dataset: Any, config: Any) -> InputContract:
    """The input contract a run of `spec` with `config` on `dataset` trains with (for a
    checkpoint saved before contracts were recorded)."""
    (images, _), _ = training_split(dataset, config)
    mean, std = channel_statistics(images)
    return InputContract.of_statistics(spec.resolution, mean, std, dataset.image_size)


def normalized_and_resized(images: np.ndarray, mean: np.ndarray, std: np.ndarray,
                            resolution: int) -> np.ndarray:
    """Normalise and resize in chunks of one fixed size, so each resolution compiles once.

    Every chunk is padded to `_CHUNK` images (and cut back after): chunks of every length
    would compile a resize per length (measured: 7 programs per trial for train, validation
    and test at 4,000 / 6,000 / 10,000 images). Padding a small split costs a few ms.
    """
    if len(images) == 0:
        return np.zeros((0, resolution, resolution, images.shape[-1]), np.float32)
    chunks = []
    for start in range(0, len(images), _CHUNK):
        chunk = images[start:start + _CHUNK]
        count = len(chunk)
        if count < _CHUNK:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], _CHUNK - count, axis=0)])
        converted = resize(normalize(jnp.asarray(chunk), mean, std), resolution)
        chunks.append(np.asarray(converted)[:count])
    return np.concatenate(chunks)


class PreparedDataCache:
    """The last few `prepare_data` results of one process, by everything they depend on.

    A sweep worker keeps one: trials at the same resolution and recipe share their arrays.
    Bounded (least recently used first out): Fashion-MNIST at 28 px is ~250 MB per entry.
    """

    def __init__(self, entries: int = 4):
        self.entries = entries
        self._prepared: OrderedDict[tuple[Any, ...], PreparedData] = OrderedDict()

    def get(self, spec: ArchSpec, dataset: Any, config: Any) -> PreparedData:
        key = (dataset.name, id(dataset), spec.resolution, spec.in_channels, spec.num_classes,
               config.subset, config.data_seed, config.validation_fraction)
        if key in self._prepared:
            self._prepared.move_to_end(key)
            return self._prepared[key]
        prepared = prepare_data(spec, dataset, config)
        self._prepared[key] = prepared
        while len(self._prepared) > self.entries:
            self._prepared.popitem(last=False)
        return prepared
