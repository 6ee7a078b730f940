"""Build the mnsearch twin of a `keras.applications` MobileNet and copy its weights.

Users start from the ImageNet checkpoints they downloaded with Keras; mnsearch rebuilds the same
network as a spec (widths read from the Keras layers, so any α works) and copies every kernel,
bias and BatchNorm statistic. Inputs: NHWC float arrays exactly as the Keras model takes them —
V3's built-in `Rescaling(1/127.5, -1)` is reproduced through the spec's input_scale/offset, V1/V2
expect inputs already scaled to [-1, 1] as their `preprocess_input` does. The mnsearch model
returns logits: compare with a Keras model built with `classifier_activation=None`, or apply
softmax.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp
import numpy as np
from flax import nnx

from mnsearch.nn.model import ConvBN, MobileNet, build
from mnsearch.spec.arch import ArchSpec
from mnsearch.spec.blocks import HeadSpec, SpecError
from mnsearch.spec.families import preset

_CLASSIFIERS = ("conv_preds", "predictions", "logits")


def from_keras(keras_model: Any) -> MobileNet:
    """The mnsearch model (training mode; use `eval_view` for inference) with Keras' weights."""
    spec = spec_from_keras(keras_model)
    model = build(spec)
    sources = [layer for layer in keras_model.layers if _weight_kind(layer) is not None]
    targets = list(_weight_targets(model))
    if len(sources) != len(targets):
        raise SpecError(f"Keras model '{keras_model.name}' has {len(sources)} weight layers, "
                        f"the rebuilt spec {len(targets)}: not a keras.applications MobileNet")
    for layer, (kind, target) in zip(sources, targets, strict=True):
        _copy_layer(layer, kind, target)
    return model


def spec_from_keras(keras_model: Any) -> ArchSpec:
    """The spec of a keras.applications MobileNet / V2 / V3 (any α, resolution, classes)."""
    name = keras_model.name.lower()
    _, height, width, in_channels = keras_model.input_shape
    if height != width or height is None:
        raise SpecError(f"Keras model '{keras_model.name}': input must be square with a fixed "
                        f"size, got {height}x{width}")
    layer_names = {layer.name for layer in keras_model.layers}
    classifier = next((keras_model.get_layer(n) for n in _CLASSIFIERS
                       if n in layer_names and keras_model.get_layer(n).get_weights()), None)
    if classifier is None:
        raise SpecError(f"Keras model '{keras_model.name}' has no classifier: build it with "
                        "include_top=True (any number of classes)")
    options: dict[str, Any] = {"num_classes": int(classifier.get_weights()[0].shape[-1]),
                               "in_channels": int(in_channels)}
    if name.startswith("mobilenetv3"):
        minimal = not any("squeeze_excite" in layer for layer in layer_names)
        family = ("v3-large" if "large" in name else "v3-small") + ("-minimal" if minimal else "")
        rescaling = next((layer for layer in keras_model.layers
                          if type(layer).__name__ == "Rescaling"), None)
        if rescaling is not None:  # include_preprocessing=True (the default)
            options.update(input_scale=float(rescaling.scale), input_offset=float(rescaling.offset))
    elif name.startswith("mobilenetv2"):
        family = "v2"
    elif name.startswith("mobilenet_"):
        family, options["padding"] = "v1", "keras_v1"
    else:
        raise SpecError(f"Keras model '{keras_model.name}' is not a keras.applications "
                        "MobileNet, MobileNetV2, MobileNetV3Large or MobileNetV3Small")
    base = preset(family, 1.0, int(height), **options)
    return _with_keras_widths(base, keras_model)


def _with_keras_widths(base: ArchSpec, keras_model: Any) -> ArchSpec:
    """Replace the widths of `base` by the output widths of the Keras layers, in order."""
    convs = [layer for layer in keras_model.layers if type(layer).__name__ == "Conv2D"]
    widths = [int(layer.get_weights()[0].shape[-1]) for layer in convs
              if layer.name in ("conv1", "Conv1", "conv", "Conv_1", "conv_1")
              or layer.name.endswith("project") or layer.name.startswith("conv_pw_")]
    head_width = next((int(layer.get_weights()[0].shape[-1]) for layer in convs
                       if layer.name == "conv_2"), 0)
    if len(widths) != 1 + len(base.blocks):
        raise SpecError(f"Keras model '{keras_model.name}' has {len(widths) - 1} blocks, "
                        f"the {base.family} family {len(base.blocks)}")
    stem = dataclasses.replace(base.stem, out_channels=widths[0])
    block_widths = iter(widths[1:])
    stages = tuple(tuple(dataclasses.replace(block, out_channels=next(block_widths))
                         for block in stage) for stage in base.stages)
    head = HeadSpec(head_width, base.head.activation, base.head.dropout) if head_width \
        else base.head
    alpha = _estimate_alpha(base, stages)
    return base.replace(stem=stem, stages=stages, head=head, alpha=alpha)


def _estimate_alpha(base: ArchSpec, stages: tuple) -> float:
    """α for labels only (Keras V3 models do not record it): ratio of penultimate-stage widths."""
    reference = base.stages[-2][-1].out_channels
    return round(stages[-2][-1].out_channels / reference, 2)


def _weight_kind(layer: Any) -> str | None:
    kind = type(layer).__name__
    return {"Conv2D": "conv", "DepthwiseConv2D": "depthwise", "BatchNormalization": "norm",
            "Dense": "dense"}.get(kind)


def _weight_targets(model: MobileNet):
    """Our weight-bearing layers in the order Keras creates them."""
    yield from _conv_targets(model.stem)
    for block in model.blocks:
        for part in (block.expand, block.depthwise):
            if part is not None:
                yield from _conv_targets(part)
        if block.se is not None:
            yield "dense", block.se.reduce
            yield "dense", block.se.expand
        yield from _conv_targets(block.project)
    if model.head is not None:
        yield "dense", model.head
    yield "dense", model.classifier


def _conv_targets(layer: ConvBN):
    yield ("depthwise" if layer.depthwise else "conv"), layer
    yield "norm", layer.norm


def _copy_layer(layer: Any, kind: str, target: Any) -> None:
    weights = [np.asarray(value, dtype=np.float32) for value in layer.get_weights()]
    if kind == "norm":
        _assign(target.scale, weights[0], layer.name)
        _assign(target.bias, weights[1], layer.name)
        _assign(target.mean, weights[2], layer.name)
        _assign(target.var, weights[3], layer.name)
    elif kind == "dense":
        _assign(target.kernel, weights[0].reshape(weights[0].shape[-2:]), layer.name)
        _assign(target.bias, weights[1], layer.name)
    elif kind == "depthwise":
        _assign(target.kernel, weights[0][..., 0], layer.name)
    else:
        _assign(target.kernel, weights[0], layer.name)


def _assign(variable: nnx.Variable, value: np.ndarray, layer_name: str) -> None:
    if tuple(variable.shape) != value.shape:
        raise SpecError(f"Keras layer '{layer_name}': weight shape {value.shape} does not match "
                        f"the rebuilt model's {tuple(variable.shape)}")
    variable[...] = jnp.asarray(value)
