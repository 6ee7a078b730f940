"""Deployable forms of a model: ONNX (via jax2onnx), serialized StableHLO (via jax.export)
and TFLite (via jax2tf and TensorFlow's converter, optional).

Each conversion is verified before anyone is told it succeeded: the converted model is loaded
back with its own runtime (ONNX Runtime, `jax.export.deserialize`) and run on random input
against the Flax model. An export that does not reproduce the model is worse than none.

Both forms use the portable `lax` depthwise convolution (ONNX `Conv` with groups, a grouped
StableHLO convolution) and XLA's BN and matmuls rather than the CPU training path: its native
kernels (mnsearch.nn.native) are custom calls no other runtime has, and its shifted multiply-adds
would become K*K slices per layer in the exported graph (measured: 20-33 s to convert instead
of 1 s, for the same outputs).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from mnsearch.errors import MnsearchError
from mnsearch.nn.model import MobileNet, eval_view, example_images, jitted_forward
from mnsearch.nn.ops import use_kernels
from mnsearch.spec.arch import ArchSpec

ONNX_TOLERANCE = 1e-4  # max abs difference, per unit of the largest logit (at least 1)
STABLEHLO_PLATFORMS = ("cpu", "cuda")
_EXTRA = "pip install 'mnsearch[export]'"


class ConversionError(MnsearchError):
    """A conversion cannot run here, or its result does not reproduce the Flax model."""


@dataclass(frozen=True)
class Check:
    """How a converted model compared with the Flax model on random input."""

    max_abs_difference: float
    batch_sizes: tuple[int, ...]


def input_shape(spec: ArchSpec) -> tuple[int, int, int]:
    """(height, width, channels) of one NHWC input image."""
    return spec.resolution, spec.resolution, spec.in_channels


def onnx_bytes(model: MobileNet, spec: ArchSpec) -> bytes:
    """The model as a serialized ONNX graph with a dynamic batch dimension named 'batch'."""
    try:
        from jax2onnx import to_onnx
    except ImportError:
        raise ConversionError(f"ONNX export needs jax2onnx and onnxruntime: {_EXTRA}") from None
    view = eval_view(model)
    with use_kernels("lax"):
        proto = to_onnx(lambda images: view(images), [("batch", *input_shape(spec))],
                        model_name=spec.name.replace(" ", "_"), input_names=["images"],
                        output_names=["logits"])
    # jax2onnx annotates some intermediate NHWC tensors with NCHW shapes; ONNX Runtime then
    # refuses SE multiplies ("Incompatible dimensions"). Its own shape inference is exact, so
    # the annotations are dropped rather than trusted.
    del proto.graph.value_info[:]
    return proto.SerializeToString()


def onnx_session(serialized: bytes, threads: int | None = None) -> object:
    """An ONNX Runtime CPU session over a serialized model."""
    try:
        import onnxruntime
    except ImportError:
        raise ConversionError(f"ONNX Runtime is not installed: {_EXTRA}") from None
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # no warnings on stderr for a model that loads fine
    if threads:
        options.intra_op_num_threads = threads
    try:
        return onnxruntime.InferenceSession(serialized, options,
                                            providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own untyped Fail/InvalidGraph
        raise ConversionError(f"ONNX Runtime cannot load the exported model: {error}") from None


def check_onnx(model: MobileNet, spec: ArchSpec, serialized: bytes,
               batch_sizes: tuple[int, ...] = (1, 3)) -> Check:
    """Run the ONNX model at several batch sizes; refuse differences above 1e-4 (max abs,
    per unit of the largest logit)."""
    session, forward = onnx_session(serialized), jitted_forward(model)
    worst = 0.0
    for batch_size in batch_sizes:
        images = example_images(spec, batch_size, seed=batch_size)
        (logits,) = session.run(None, {"images": images})
        expected = np.asarray(forward(jnp.asarray(images)))  # the model's own (CPU) path
        worst = max(worst, _scaled_difference(logits, expected))
    _require_close(worst, "ONNX Runtime output")
    return Check(worst, batch_sizes)


def stablehlo_bytes(model: MobileNet, spec: ArchSpec,
                    platforms: tuple[str, ...] = STABLEHLO_PLATFORMS) -> bytes:
    """`jax.export` serialization with a symbolic batch dimension, lowered for `platforms`.

    The weights are baked in as constants, so the artifact runs with nothing but JAX (or any
    StableHLO consumer) and the image batch.
    """
    (batch,) = jax.export.symbolic_shape("batch")
    shape = jax.ShapeDtypeStruct((batch, *input_shape(spec)), jnp.float32)
    with use_kernels("lax"):
        exported = jax.export.export(jitted_forward(model), platforms=platforms)(shape)
    return bytes(exported.serialize())


def stablehlo_text(serialized: bytes) -> str:
    """The StableHLO module as MLIR text, for reading and for non-JAX toolchains."""
    return jax.export.deserialize(bytearray(serialized)).mlir_module()


def check_stablehlo(model: MobileNet, spec: ArchSpec, serialized: bytes,
                    batch_sizes: tuple[int, ...] = (1, 3)) -> Check:
    """Reload the serialized module and compare with the jitted Flax model (same lax path).

    Both compile the same program, so the outputs must be identical, not merely close.
    """
    exported, forward = jax.export.deserialize(bytearray(serialized)), jitted_forward(model)
    worst = 0.0
    for batch_size in batch_sizes:
        images = jnp.asarray(example_images(spec, batch_size, seed=batch_size))
        with use_kernels("lax"):
            expected = np.asarray(forward(images))
        logits = np.asarray(exported.call(images))
        worst = max(worst, float(np.max(np.abs(logits - expected))))
    if worst != 0.0:
        raise ConversionError(f"the reloaded StableHLO module differs from the Flax model by "
                          f"{worst:.3g} (max abs): not exported")
    return Check(worst, batch_sizes)


def pixel_input_onnx(serialized: bytes, mean: np.ndarray, std: np.ndarray) -> bytes:
    """The float ONNX model behind the training normalisation, taking raw pixels.

    Input `pixels`: uint8 NHWC at the model's resolution; inside the graph, Cast to float,
    `/ 255`, `- mean`, `/ std` (per channel, the last axis) — the same operations, in the same
    order, as `mnsearch.train.preprocess.normalize` — then the float graph unchanged.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    proto = onnx.load_from_string(serialized)
    graph = proto.graph
    (images,) = [value for value in graph.input if value.name == "images"]
    shape = [dim.dim_param or dim.dim_value for dim in images.type.tensor_type.shape.dim]
    graph.input.remove(images)
    graph.input.insert(0, helper.make_tensor_value_info("pixels", TensorProto.UINT8, shape))
    graph.initializer.extend([
        numpy_helper.from_array(np.array(255.0, np.float32), "pixel_scale"),
        numpy_helper.from_array(np.asarray(mean, np.float32), "pixel_mean"),
        numpy_helper.from_array(np.asarray(std, np.float32), "pixel_std")])
    nodes = [helper.make_node("Cast", ["pixels"], ["pixels_float"], to=TensorProto.FLOAT),
             helper.make_node("Div", ["pixels_float", "pixel_scale"], ["pixels_scaled"]),
             helper.make_node("Sub", ["pixels_scaled", "pixel_mean"], ["pixels_centred"]),
             helper.make_node("Div", ["pixels_centred", "pixel_std"], ["images"])]
    for index, node in enumerate(nodes):
        graph.node.insert(index, node)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def normalized_pixels(pixels: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(pixels / 255 - mean) / std in float32, as the training pipeline computes it."""
    return ((pixels.astype(np.float32) / np.float32(255.0) - np.asarray(mean, np.float32))
            / np.asarray(std, np.float32))


def check_pixel_onnx(model: MobileNet, spec: ArchSpec, serialized: bytes, mean: np.ndarray,
                     std: np.ndarray, batch_sizes: tuple[int, ...] = (1, 3)) -> Check:
    """Run the raw-pixel ONNX model on random uint8 images against the Flax model on the same
    images normalised; refuse differences above 1e-4."""
    session, forward = onnx_session(serialized), jitted_forward(model)
    rng = np.random.default_rng(0)
    worst = 0.0
    for batch_size in batch_sizes:
        pixels = rng.integers(0, 256, (batch_size, *input_shape(spec)), dtype=np.uint8)
        (logits,) = session.run(None, {"pixels": pixels})
        expected = np.asarray(forward(jnp.asarray(normalized_pixels(pixels, mean, std))))
        worst = max(worst, _scaled_difference(logits, expected))
    _require_close(worst, "the raw-pixel ONNX model")
    return Check(worst, batch_sizes)


def tflite_bytes(model: MobileNet, spec: ArchSpec, mean: np.ndarray, std: np.ndarray) -> bytes:
    """A TFLite (LiteRT) model for phones: uint8 NHWC pixels at batch 1 in, the training
    normalisation inside, logits out; TFLite builtin operators only (no Flex).

    Through `jax.experimental.jax2tf` and TensorFlow's converter (the `tflite` extra). Batch 1
    because a phone classifies one frame at a time, and a dynamic batch adds shape arithmetic
    and keeps BN unfolded (measured).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    try:
        import tensorflow as tf
        from jax.experimental import jax2tf
    except ImportError:
        raise ConversionError("TFLite export needs tensorflow and ai-edge-litert: pip install "
                              "'mnsearch[tflite]'") from None
    from flax import nnx

    graph, state = nnx.split(eval_view(model))
    mean32, std32 = jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32)

    def forward(pixels: jax.Array) -> jax.Array:
        with use_kernels("lax"):
            images = (pixels.astype(jnp.float32) / 255.0 - mean32) / std32
            return nnx.merge(graph, state)(images)

    signature = [tf.TensorSpec([1, *input_shape(spec)], tf.uint8, name="pixels")]
    function = tf.function(jax2tf.convert(forward), autograph=False,
                           input_signature=signature).get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return bytes(converter.convert())


def tflite_runner(serialized: bytes) -> Callable[[np.ndarray], np.ndarray]:
    """Run a TFLite model with LiteRT's interpreter, one image at a time: pixels -> logits."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise ConversionError("running TFLite needs ai-edge-litert: pip install "
                              "'mnsearch[tflite]'") from None
    interpreter = Interpreter(model_content=serialized, num_threads=1)
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    def run(pixels: np.ndarray) -> np.ndarray:
        outputs = []
        for image in pixels:
            interpreter.set_tensor(source["index"], image[None])
            interpreter.invoke()
            outputs.append(interpreter.get_tensor(target["index"])[0])
        return np.stack(outputs)
    return run


def check_tflite(model: MobileNet, spec: ArchSpec, serialized: bytes, mean: np.ndarray,
                 std: np.ndarray, images: int = 3) -> Check:
    """Run the TFLite model on random uint8 images against the Flax model on the same images
    normalised; refuse differences above 1e-4 (max abs, per unit of the largest logit)."""
    run, forward = tflite_runner(serialized), jitted_forward(model)
    pixels = np.random.default_rng(0).integers(0, 256, (images, *input_shape(spec)),
                                               dtype=np.uint8)
    expected = np.asarray(forward(jnp.asarray(normalized_pixels(pixels, mean, std))))
    worst = _scaled_difference(run(pixels), expected)
    _require_close(worst, "the TFLite model")
    return Check(worst, (1,))


def _scaled_difference(logits: np.ndarray, expected: np.ndarray) -> float:
    """Max abs difference divided by the largest expected logit (at least 1): float32 sums
    err in proportion to their magnitude, and random-init V3 logits reach ~50."""
    scale = max(1.0, float(np.max(np.abs(expected))))
    return float(np.max(np.abs(logits - expected))) / scale


def _require_close(worst: float, what: str) -> None:
    if not worst <= ONNX_TOLERANCE:
        raise ConversionError(f"{what} differs from the Flax model by {worst:.3g} (max abs "
                              f"per unit of the largest logit; allowed {ONNX_TOLERANCE:g}): "
                              "not exported")
