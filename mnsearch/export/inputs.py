"""What an export needs from a trial's data: its recipe, its input contract, calibration
images and the test split as uint8 pixels at the model's resolution.

The dataset is the study's (`StudyRecord.dataset`), loaded once per export and only when a
format needs it (int8, or a checkpoint saved before input contracts were recorded). The
training split is drawn again from the recipe (validation fraction, subset, seed), exactly as
the trial drew it, so calibration never sees validation or test images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial

from mnsearch.data.contract import InputContract
from mnsearch.errors import MnsearchError
from mnsearch.nn.quantize import DEFAULT_CALIBRATION_IMAGES, QuantizationError
from mnsearch.search.record import StudyRecord, TrialRecord
from mnsearch.spec.arch import ArchSpec
from mnsearch.train.config import TrainConfig


class TrialInputs:
    """The study's dataset (lazily, once) and each trial's recipe, contract and pixels."""

    def __init__(self, study: optuna.Study) -> None:
        self.dataset_name = StudyRecord.of(study).dataset
        self._dataset: Any = None

    def dataset(self) -> Any:
        if self._dataset is None:
            from mnsearch.data.load import load_dataset

            if self.dataset_name is None:
                raise MnsearchError("the study records no dataset: int8 calibration and the "
                                    "input contract need it")
            self._dataset = load_dataset(self.dataset_name)
        return self._dataset

    def recipe(self, trial: FrozenTrial, checkpoint: Path | None) -> TrainConfig:
        """The recipe the trial trained with (its record, else its checkpoint's metadata)."""
        from mnsearch.train.checkpoint import load_metadata

        values = TrialRecord.of(trial).recipe
        if values is None and checkpoint is not None:
            values = load_metadata(checkpoint).get("config")
        return TrainConfig(**(values or {}))

    def contract(self, spec: ArchSpec, trial: FrozenTrial,
                 checkpoint: Path | None) -> InputContract:
        """From the checkpoint when it recorded one, else recomputed from the recipe."""
        from mnsearch.train.checkpoint import load_metadata
        from mnsearch.train.data import training_contract

        if checkpoint is not None:
            recorded = load_metadata(checkpoint).get("input")
            if recorded is not None:
                return InputContract.from_dict(recorded, str(checkpoint))
        return training_contract(spec, self.dataset(), self.recipe(trial, checkpoint))

    def calibration(self, spec: ArchSpec, trial: FrozenTrial, checkpoint: Path | None,
                    count: int | None) -> np.ndarray:
        """`count` training images of the trial's own training split, as uint8 pixels (None:
        `DEFAULT_CALIBRATION_IMAGES`, or the whole split when it is smaller)."""
        from mnsearch.train.data import training_split
        from mnsearch.train.preprocess import pixels_at

        config = self.recipe(trial, checkpoint)
        (images, labels), _ = training_split(self.dataset(), config)
        if count is None:
            count = min(DEFAULT_CALIBRATION_IMAGES, len(images))
        return pixels_at(calibration_pixels(images, labels, count, config.seed),
                         spec.resolution)

    def check_calibration(self, trial: FrozenTrial, count: int | None) -> None:
        """Refuse a calibration set larger than the trial's training split, before any work."""
        from mnsearch.train.data import training_split

        (images, _), _ = training_split(self.dataset(), self.recipe(trial, None))
        if count is not None and count > len(images):
            raise QuantizationError(f"--calibration {count} is larger than trial "
                                    f"{trial.number}'s training split ({len(images)} images): "
                                    f"use at most {len(images)}")

    def test_pixels(self, spec: ArchSpec) -> tuple[np.ndarray, np.ndarray]:
        """The test split as uint8 pixels at the model's resolution, and its labels."""
        from mnsearch.train.preprocess import pixels_at

        dataset = self.dataset()
        return (pixels_at(dataset.test_images, spec.resolution),
                np.asarray(dataset.test_labels, np.int64))


def calibration_pixels(images: np.ndarray, labels: np.ndarray, count: int,
                       seed: int = 0) -> np.ndarray:
    """`count` training images, stratified by class (every class represented)."""
    from mnsearch.data.datasets import DatasetError, stratified_subset

    if count > len(images):
        raise QuantizationError(f"--calibration {count} is larger than the training split "
                                f"({len(images)} images): use at most {len(images)}")
    try:
        chosen, _ = stratified_subset(images, labels, count, seed)
    except DatasetError as error:
        raise QuantizationError(f"--calibration {count}: {error}") from None
    return chosen
