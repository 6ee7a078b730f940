"""A trained model's int8 accuracy on its validation split (the `int8_accuracy` objective).

The sweep optimises what a phone would run: the raw-pixel ONNX model quantized by ONNX
Runtime (`mnsearch.nn.quantize`), calibrated on the run's own training images and evaluated
on its validation split, never the test split (selection on test would leak it). Takes a few
seconds per small model on a CPU (export, calibration, two evaluations).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mnsearch.data.contract import InputContract
from mnsearch.data.datasets import stratified_subset
from mnsearch.nn.quantize import DEFAULT_CALIBRATION_IMAGES, Int8Report
from mnsearch.spec.arch import ArchSpec
from mnsearch.train.config import TrainConfig


def validation_int8(spec: ArchSpec, checkpoint: str | Path, dataset: Any, config: TrainConfig,
                    calibration: int = DEFAULT_CALIBRATION_IMAGES) -> Int8Report:
    """Float and int8 accuracy, on the validation split, of the model in `checkpoint`."""
    import numpy as np

    from mnsearch.nn.convert import onnx_bytes, pixel_input_onnx
    from mnsearch.nn.model import build
    from mnsearch.nn.quantize import int8_report, quantize_int8
    from mnsearch.train.checkpoint import load_metadata
    from mnsearch.train.data import training_split
    from mnsearch.train.preprocess import pixels_at
    from mnsearch.train.weights import load_weights

    model = build(spec, 0)
    load_weights(model, checkpoint)
    contract = InputContract.from_dict(load_metadata(checkpoint).get("input"), str(checkpoint))
    (images, labels), validation = training_split(dataset, config)
    count = min(calibration, len(images))
    chosen, _ = stratified_subset(images, labels, count, config.seed)
    pixel_model = pixel_input_onnx(onnx_bytes(model, spec), np.asarray(contract.mean),
                                   np.asarray(contract.std))
    int8_model = quantize_int8(pixel_model, pixels_at(chosen, spec.resolution))
    return int8_report(pixel_model, int8_model, pixels_at(validation.images, spec.resolution),
                       np.asarray(validation.labels), count, split="validation")
