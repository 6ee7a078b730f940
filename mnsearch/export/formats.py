"""The model files of an export, each verified before it is written.

- `model.onnx`: raw uint8 NHWC pixels at the model's resolution in (input `pixels`), the
  training normalisation inside the graph, logits out; `model-float.onnx`: normalised float32
  images in (input `images`), for pipelines that normalise themselves. Both are checked
  against the Flax model (1e-4).
- `model-int8.onnx` + `int8.json`: the raw-pixel model quantized (`export.quantize`), with the
  test accuracy of both models on the same pixels, their sizes and latencies.
- `model.tflite`: the raw-pixel model for LiteRT (TFLite) at batch 1, builtin operators only,
  checked with LiteRT's interpreter (the `tflite` extra).
- `model.stablehlo` + `model.mlir`: `jax.export` of the float model (normalised input).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mnsearch.atomic import write_atomically
from mnsearch.data.contract import InputContract
from mnsearch.nn.quantize import Int8Report, int8_report, quantize_int8
from mnsearch.spec.arch import ArchSpec


def verified_onnx(model: Any, spec: ArchSpec, contract: InputContract) -> tuple[bytes, bytes]:
    """(float model, raw-pixel model) as ONNX, each checked against the Flax model; the
    raw-pixel one is also int8's source."""
    from mnsearch.nn.convert import check_onnx, check_pixel_onnx, onnx_bytes, pixel_input_onnx

    mean, std = np.asarray(contract.mean), np.asarray(contract.std)
    float_model = onnx_bytes(model, spec)
    check_onnx(model, spec, float_model)
    pixel_model = pixel_input_onnx(float_model, mean, std)
    check_pixel_onnx(model, spec, pixel_model, mean, std)
    return float_model, pixel_model


def write_onnx(float_model: bytes, pixel_model: bytes, spec: ArchSpec, folder: Path,
               latency: dict[str, dict[str, float]]) -> None:
    """model.onnx (raw pixels) and model-float.onnx; the latency recorded under `onnxruntime`
    is the raw-pixel model's, batch 1."""
    from mnsearch.nn.convert import onnx_session
    from mnsearch.nn.latency import time_calls

    write_atomically(folder / "model-float.onnx", float_model)
    write_atomically(folder / "model.onnx", pixel_model)
    session = onnx_session(pixel_model)
    pixels = np.zeros((1, spec.resolution, spec.resolution, spec.in_channels), np.uint8)
    latency["onnxruntime"] = time_calls(lambda: session.run(None, {"pixels": pixels}),
                                        repeats=20, runtime="onnxruntime").as_dict()


def write_int8(pixel_model: bytes, folder: Path, calibration: np.ndarray,
               test_pixels: np.ndarray, test_labels: np.ndarray) -> Int8Report:
    """model-int8.onnx and int8.json (the report, also returned)."""
    int8_model = quantize_int8(pixel_model, calibration)
    report = int8_report(pixel_model, int8_model, test_pixels, test_labels, len(calibration))
    write_atomically(folder / "model-int8.onnx", int8_model)
    write_atomically(folder / "int8.json", json.dumps(report.as_dict(), indent=2).encode())
    return report


def write_stablehlo(model: Any, spec: ArchSpec, folder: Path) -> None:
    """model.stablehlo (serialized, verified by reloading) and its MLIR text."""
    from mnsearch.nn.convert import check_stablehlo, stablehlo_bytes, stablehlo_text

    serialized = stablehlo_bytes(model, spec)
    check_stablehlo(model, spec, serialized)
    write_atomically(folder / "model.stablehlo", serialized)
    write_atomically(folder / "model.mlir", stablehlo_text(serialized).encode())


def write_tflite(model: Any, spec: ArchSpec, contract: InputContract, folder: Path,
                 latency: dict[str, dict[str, float]]) -> None:
    """model.tflite: uint8 pixels at batch 1, normalisation inside, TFLite builtins only;
    verified with LiteRT's interpreter against the Flax model, its latency recorded."""
    from mnsearch.nn.convert import check_tflite, tflite_bytes, tflite_runner
    from mnsearch.nn.latency import time_calls

    mean, std = np.asarray(contract.mean), np.asarray(contract.std)
    serialized = tflite_bytes(model, spec, mean, std)
    check_tflite(model, spec, serialized, mean, std)
    write_atomically(folder / "model.tflite", serialized)
    run = tflite_runner(serialized)
    pixels = np.zeros((1, spec.resolution, spec.resolution, spec.in_channels), np.uint8)
    latency["litert"] = time_calls(lambda: run(pixels), repeats=20, runtime="litert").as_dict()
