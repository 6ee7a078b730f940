"""int8 models for phones: static post-training quantization, with its accuracy measured.

Post-training quantization of depthwise networks is known to be fragile (MobileNetV1 loses
12 points in OpenCV's zoo, V2 2.6 in ONNX's), so an int8 model is only worth shipping with
its accuracy measured. This module uses ONNX Runtime's own tooling, as its documentation
recommends: `quant_pre_process` (symbolic shape inference, graph optimisation, ONNX shape
inference), then `quantize_static` in the QDQ format with per-channel int8 weights and int8
activations (S8S8, the documented first choice), MinMax calibration on
`DEFAULT_CALIBRATION_IMAGES` training images. The model quantized is the raw-pixel one
(`mnsearch.nn.convert.pixel_input_onnx`): the phone feeds uint8 pixels to either.

Both models are then evaluated on the same pixels (the dataset's test split at the model's
resolution); a drop above `DROP_WARNING` is reported loudly (the export still writes).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mnsearch.errors import MnsearchError

DEFAULT_CALIBRATION_IMAGES = 512
CALIBRATION_BATCH = 32
DROP_WARNING = 0.01  # a fall of more than 1 point of accuracy is called out
EVALUATION_BATCH = 256


class QuantizationError(MnsearchError):
    """int8 quantization cannot run as asked (missing tools, too many calibration images)."""


@dataclass(frozen=True)
class Int8Report:
    """What quantization did and cost: accuracies on one split, sizes, batch-1 latencies."""

    calibration_images: int
    split: str
    images: int
    float_accuracy: float
    int8_accuracy: float
    float_bytes: int
    int8_bytes: int
    float_latency_ms: float
    int8_latency_ms: float

    @property
    def drop(self) -> float:
        return self.float_accuracy - self.int8_accuracy

    @property
    def warning(self) -> str | None:
        """A loud line when int8 loses more than `DROP_WARNING` of accuracy."""
        if self.drop <= DROP_WARNING:
            return None
        return (f"int8 accuracy {self.int8_accuracy:.2%} is {self.drop:.2%} below float "
                f"({self.float_accuracy:.2%}) on {self.images} {self.split} images: above the "
                f"{DROP_WARNING:.0%} threshold; check it before shipping (the export is written)")

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "drop": self.drop, "warning": self.warning}


def require_quantization_tools() -> None:
    """Fail before any work when ONNX Runtime's quantization tools are absent."""
    try:
        import jax2onnx  # noqa: F401
        import onnx  # noqa: F401
        from onnxruntime.quantization import quantize_static  # noqa: F401
    except ImportError:
        raise QuantizationError("int8 models need jax2onnx, onnx and onnxruntime: pip install "
                                "'mnsearch[export]' (or leave int8 out of --formats and "
                                "int8_accuracy out of the objectives)") from None


def quantize_int8(pixel_model: bytes, calibration: np.ndarray) -> bytes:
    """The int8 (QDQ) model of a raw-pixel ONNX model, calibrated on uint8 `calibration`."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches: Iterator[np.ndarray] = iter(
                calibration[start:start + CALIBRATION_BATCH]
                for start in range(0, len(calibration), CALIBRATION_BATCH))

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {"pixels": batch}

    # The quantizer logs a root-logger warning per rank-1 weight it quantizes per tensor
    # ("Axis 1 is out-of-range"): expected for BN-fused biases, noise on the console.
    with tempfile.TemporaryDirectory(prefix="mnsearch-int8-") as folder, _quiet_root_logger():
        source, prepared, quantized = (Path(folder) / name for name in
                                       ("float.onnx", "prepared.onnx", "int8.onnx"))
        source.write_bytes(pixel_model)
        quant_pre_process(str(source), str(prepared))
        quantize_static(str(prepared), str(quantized), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QInt8,
                        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
        return quantized.read_bytes()


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def onnx_accuracy(session: Any, pixels: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of a raw-pixel ONNX Runtime session."""
    correct = 0
    for start in range(0, len(pixels), EVALUATION_BATCH):
        (logits,) = session.run(None, {"pixels": pixels[start:start + EVALUATION_BATCH]})
        correct += int(np.sum(np.argmax(logits, -1) == labels[start:start + EVALUATION_BATCH]))
    return correct / max(len(pixels), 1)


def int8_report(float_model: bytes, int8_model: bytes, pixels: np.ndarray, labels: np.ndarray,
                calibration_images: int, split: str = "test") -> Int8Report:
    """Accuracy of both models on the same pixels, their sizes and batch-1 latencies."""
    from mnsearch.nn.convert import onnx_session
    from mnsearch.nn.latency import time_calls

    sessions = [onnx_session(model) for model in (float_model, int8_model)]
    accuracies = [onnx_accuracy(session, pixels, labels) for session in sessions]
    one = pixels[:1]
    latencies = [time_calls(lambda session=session: session.run(None, {"pixels": one}),
                            repeats=20, runtime="onnxruntime").latency_ms
                 for session in sessions]
    return Int8Report(calibration_images, split, len(pixels), accuracies[0], accuracies[1],
                      len(float_model), len(int8_model), latencies[0], latencies[1])
