"""Image classification datasets held in memory as uint8 NHWC arrays, and stratified splits.

Numpy only (no JAX): loading and splitting happen once per run on the host, and keeping JAX out
lets the CLI report a missing or corrupt dataset before paying for accelerator start-up. The
file formats themselves are read in `mnsearch.data.readers`.

The test split of a `Dataset` is for reporting only: model and hyper-parameter selection use
`split_validation`, which carves a validation set out of the training data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnsearch.errors import MnsearchError

SOURCE_FORMS = "'fashion-mnist', 'cifar10:PATH' (the cifar-10-batches-py folder) or 'folder:PATH'"


class DatasetError(MnsearchError):
    """A dataset cannot be found, read or split; the message names the file and the fix."""


@dataclass(frozen=True)
class Split:
    """Images (uint8 N×H×W×C) with their int32 labels: one part of a dataset."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Dataset:
    """A labelled image dataset in memory: uint8 N×H×W×C images, int32 labels, class names."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        """Check shapes and label ranges here, so every reader and every caller gets them."""
        for part, images, labels in (("train", self.train_images, self.train_labels),
                                     ("test", self.test_images, self.test_labels)):
            if images.ndim != 4 or images.dtype != np.uint8:
                raise DatasetError(f"dataset '{self.name}': {part} images must be uint8 "
                                   f"N×H×W×C, got {images.dtype} of shape {images.shape}")
            if labels.ndim != 1 or len(labels) != len(images):
                raise DatasetError(f"dataset '{self.name}': {len(images)} {part} images but "
                                   f"labels of shape {labels.shape}: need one label per image")
            if len(labels) and (labels.min() < 0 or labels.max() >= len(self.class_names)):
                raise DatasetError(f"dataset '{self.name}': {part} labels must lie in "
                                   f"0..{len(self.class_names) - 1} (one per class name)")
        self._check_classes()
        if self.test_images.shape[1:] != self.train_images.shape[1:]:
            raise DatasetError(f"dataset '{self.name}': test images are "
                               f"{self.test_images.shape[1:]} but train images "
                               f"{self.train_images.shape[1:]} (H, W, C): they must match")

    def _check_classes(self) -> None:
        """At least two classes, present in training, and images in both splits.

        With one class every prediction is right: a run would report 100% test accuracy and
        a sweep would rank networks on nothing. An empty split has no accuracy at all.
        """
        if len(self.class_names) < 2:
            raise DatasetError(f"dataset '{self.name}' has {len(self.class_names)} class(es): "
                               "classification needs at least 2 (add a folder per class)")
        for part, labels in (("training", self.train_labels), ("test", self.test_labels)):
            if len(labels) == 0:
                raise DatasetError(f"dataset '{self.name}' has no {part} images: every split "
                                   "needs some (add images, or let 20% be held out as test)")
        if len(np.unique(self.train_labels)) < 2:
            raise DatasetError(f"dataset '{self.name}': the training images hold only class "
                               f"'{self.class_names[int(self.train_labels[0])]}': training "
                               "needs images of at least 2 classes")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def in_channels(self) -> int:
        return int(self.train_images.shape[3])

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return int(self.train_images.shape[1]), int(self.train_images.shape[2])


def split_validation(dataset: Dataset, fraction: float = 0.1,
                     seed: int = 0) -> tuple[Split, Split]:
    """Return (train, validation), a stratified split of the TRAINING data.

    Selection on the test split would leak it into the result it reports, so the validation
    set comes from the training images; stratifying keeps class balance in both parts.
    """
    return stratified_holdout(dataset.train_images, dataset.train_labels, fraction, seed)


def stratified_holdout(images: np.ndarray, labels: np.ndarray, fraction: float,
                       seed: int) -> tuple[Split, Split]:
    """Split into (kept, held out) with about `fraction` of every class held out."""
    if not 0.0 < fraction < 1.0:
        raise DatasetError(f"validation fraction {fraction} is out of range: use a number "
                           "strictly between 0 and 1, e.g. 0.1")
    if len(labels) < 2:
        raise DatasetError(f"cannot hold out a fraction of {len(labels)} image(s): "
                           "need at least 2")
    total = min(max(round(fraction * len(labels)), 1), len(labels) - 1)
    held_out = _stratified_indices(labels, total, seed, at_least_one=False)
    kept = np.setdiff1d(np.arange(len(labels)), held_out, assume_unique=True)
    return (Split(images[kept], labels[kept]), Split(images[held_out], labels[held_out]))


def stratified_subset(images: np.ndarray, labels: np.ndarray, size: int | float,
                      seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep `size` images (a count, or a fraction in (0, 1]) with every class represented.

    Small subsets make quick proxy runs for a sweep; stratifying keeps their class balance
    equal to the full set's, and the seed makes a proxy run repeatable. Order is preserved.
    """
    classes = len(np.unique(labels))
    count = _subset_count(size, len(labels), classes)
    if count == len(labels):
        return images, labels
    chosen = _stratified_indices(labels, count, seed, at_least_one=True)
    return images[chosen], labels[chosen]


def _subset_count(size: int | float, available: int, classes: int) -> int:
    """Turn a count or a fraction into a number of images, or say what range is allowed."""
    allowed = (f"allowed: a count from {classes} (the number of classes) to {available}, "
               f"or a fraction in (0, 1]")
    if isinstance(size, bool) or not isinstance(size, int | float | np.integer | np.floating):
        raise DatasetError(f"subset size {size!r} is not a number: {allowed}")
    if isinstance(size, int | np.integer):
        count = int(size)
    elif 0.0 < size <= 1.0:
        count = round(float(size) * available)
    else:
        raise DatasetError(f"subset fraction {size} is out of range: {allowed}")
    if not classes <= count <= available:
        raise DatasetError(f"subset size {size} gives {count} images: {allowed}")
    return count


def _stratified_indices(labels: np.ndarray, total: int, seed: int, *,
                        at_least_one: bool) -> np.ndarray:
    """Sorted indices of `total` images drawn per class in proportion to class sizes."""
    classes, class_counts = np.unique(labels, return_counts=True)
    if at_least_one:  # one image per class first, the rest in proportion to what is left
        allocation = 1 + _allocate(class_counts - 1, total - len(classes))
    else:
        allocation = _allocate(class_counts, total)
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(labels == label))[:number]
              for label, number in zip(classes, allocation, strict=True)]
    return np.sort(np.concatenate(chosen))


def _allocate(class_counts: np.ndarray, total: int) -> np.ndarray:
    """Share `total` among classes in proportion to their counts, summing exactly to `total`.

    Largest-remainder rounding: plain per-class rounding can miss the requested total.
    """
    available = int(class_counts.sum())
    if available == 0:
        return np.zeros_like(class_counts)
    quotas = class_counts * (total / available)
    allocation = np.floor(quotas).astype(np.int64)
    shortfall = total - int(allocation.sum())
    by_remainder = np.argsort(-(quotas - allocation), kind="stable")
    allocation[by_remainder[:shortfall]] += 1
    return np.minimum(allocation, class_counts)
