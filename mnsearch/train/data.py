"""Turn a dataset into the arrays one training run needs: split, subset, normalised, resized.

Kept apart from the training loop so a sweep can prepare a dataset once per (resolution,
recipe) and so the loop never sees uint8 pixels or a test image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np

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


def prepare_data(spec: ArchSpec, dataset: Any, config: Any) -> PreparedData:
    """Validation split from the training data, optional stratified subset, normalise, resize."""
    if dataset.in_channels != spec.in_channels or dataset.num_classes != spec.num_classes:
        raise DatasetError(
            f"dataset '{dataset.name}' has {dataset.in_channels} channels and "
            f"{dataset.num_classes} classes, the spec {spec.in_channels} and "
            f"{spec.num_classes}: build the spec with --in-channels {dataset.in_channels} "
            f"--classes {dataset.num_classes}")
    train, validation = split_validation(dataset, config.validation_fraction, config.seed)
    train_images, train_labels = train.images, train.labels
    if config.subset is not None:
        train_images, train_labels = stratified_subset(train_images, train_labels,
                                                       config.subset, config.seed)
    mean, std = channel_statistics(train_images)

    def convert(images: np.ndarray) -> np.ndarray:
        chunks = [np.asarray(resize(normalize(jnp.asarray(images[start:start + _CHUNK]),
                                              mean, std), spec.resolution))
                  for start in range(0, len(images), _CHUNK)]
        return np.concatenate(chunks) if chunks else np.zeros((0,), np.float32)

    return PreparedData(convert(train_images), np.asarray(train_labels, np.int32),
                        convert(validation.images), np.asarray(validation.labels, np.int32),
                        convert(dataset.test_images), np.asarray(dataset.test_labels, np.int32),
                        dataset.num_classes)
