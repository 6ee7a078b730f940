"""`from_keras` rebuilds keras.applications MobileNets exactly (logits equal to 1e-4 relative)."""

import numpy as np
import pytest
from flax import nnx

from mnsearch.nn.keras import from_keras
from mnsearch.nn.model import eval_view
from mnsearch.spec.blocks import SpecError

keras = pytest.importorskip("keras")


def _randomize(model, rng):
    """Give every weight a value that keeps the signal alive, so a wrong layer shows.

    With Keras' default initialisers the logits are ~1e-10 and any network "matches"
    (../shared/reference/measured.md). Projection BNs get small scales so residual sums stay O(1).
    """
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if type(layer).__name__ == "BatchNormalization":
            low, high = (0.1, 0.3) if "project" in layer.name else (0.5, 1.5)
            gamma, beta, mean, variance = weights
            new = [rng.uniform(low, high, gamma.shape), rng.normal(0, 0.1, beta.shape),
                   rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 1.5, variance.shape)]
        else:
            kernel = weights[0]
            depthwise = type(layer).__name__ == "DepthwiseConv2D"
            fan_in = np.prod(kernel.shape[:2] if depthwise else kernel.shape[:-1])
            new = [rng.normal(0, np.sqrt(2 / fan_in), kernel.shape)]
            new += [rng.normal(0, 0.1, weight.shape) for weight in weights[1:]]
        layer.set_weights([weight.astype("float32") for weight in new])


CASES = [
    ("MobileNet", {"alpha": 1.0}, 64, 10),
    ("MobileNet", {"alpha": 0.25}, 75, 3),  # odd sizes: Keras V1's (0, 1) stride-2 padding
    ("MobileNetV2", {"alpha": 0.35}, 96, 5),
    ("MobileNetV2", {"alpha": 1.3}, 63, 10),
    ("MobileNetV3Small", {"alpha": 0.75}, 75, 7),
    ("MobileNetV3Small", {"alpha": 1.0, "minimalistic": True}, 64, 10),
    ("MobileNetV3Large", {"alpha": 1.0}, 64, 4),
    ("MobileNetV3Large", {"alpha": 0.5, "minimalistic": True}, 81, 10),
    ("MobileNetV3Large", {"alpha": 0.75, "include_preprocessing": False}, 64, 6),
]


@pytest.mark.parametrize("keras_class, options, resolution, classes", CASES)
def test_from_keras_gives_the_same_logits(keras_class, options, resolution, classes):
    rng = np.random.default_rng(resolution + classes)
    reference = getattr(keras.applications, keras_class)(
        weights=None, input_shape=(resolution, resolution, 3), classes=classes,
        classifier_activation=None, **options)
    _randomize(reference, rng)
    images = rng.uniform(-1, 1, (2, resolution, resolution, 3)).astype("float32")
    if "V3" in keras_class and options.get("include_preprocessing", True):
        images = images * 127.5 + 127.5  # V3 rescales [0, 255] inputs itself
    expected = np.asarray(reference(images, training=False))
    model = eval_view(from_keras(reference))
    logits = np.asarray(nnx.jit(lambda network, x: network(x))(model, images))
    scale = np.abs(expected).max()
    assert 0.1 < scale < 100, "reference logits must be O(1) for the comparison to mean much"
    assert np.abs(logits - expected).max() <= 1e-4 * max(1.0, scale)
    assert model.spec.num_classes == classes and model.spec.resolution == resolution


def test_from_keras_refuses_models_without_a_classifier():
    headless = keras.applications.MobileNetV2(weights=None, include_top=False,
                                              input_shape=(64, 64, 3))
    with pytest.raises(SpecError, match="include_top=True"):
        from_keras(headless)


def test_from_keras_refuses_other_models():
    other = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Dense(2)], name="other")
    with pytest.raises(SpecError):
        from_keras(other)
