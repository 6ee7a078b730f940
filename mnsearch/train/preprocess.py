"""On-device preprocessing of NHWC image batches: normalisation, resizing, augmentation.

Pure, jit-compiled functions: the training step calls `augment` inside its own jit, so
augmentation costs no host round trip and the same key always gives the same batch.
`channel_statistics` is the one host-side (numpy) function: it runs once on the train split.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from mnsearch.data.contract import InputContract
from mnsearch.data.datasets import DatasetError

_STATISTICS_CHUNK = 8192  # images per float64 accumulation, to bound host memory


def channel_statistics(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of pixels scaled to [0, 1] (float32, shape C).

    Compute them on the training split only, so no test information leaks into training.
    A constant channel gets std 1 rather than 0, so normalising it cannot divide by zero.
    """
    if images.ndim != 4 or len(images) == 0:
        raise DatasetError(f"channel statistics need a non-empty N×H×W×C batch, got shape "
                           f"{images.shape}")
    channels = images.shape[-1]
    total, total_squares = np.zeros(channels), np.zeros(channels)
    for start in range(0, len(images), _STATISTICS_CHUNK):
        chunk = np.asarray(images[start:start + _STATISTICS_CHUNK], np.float64) / 255.0
        total += chunk.sum(axis=(0, 1, 2))
        total_squares += np.square(chunk).sum(axis=(0, 1, 2))
    count = images.size // channels
    mean = total / count
    std = np.sqrt(np.maximum(total_squares / count - np.square(mean), 0.0))
    std = np.where(std < 1e-6, 1.0, std)
    return mean.astype(np.float32), std.astype(np.float32)


@jax.jit
def normalize(images: jax.Array | np.ndarray, mean: jax.Array | np.ndarray,
              std: jax.Array | np.ndarray) -> jax.Array:
    """(images / 255 - mean) / std as float32: the inputs are 0..255 pixel values."""
    return (jnp.asarray(images, jnp.float32) / 255.0 - mean) / std


@partial(jax.jit, static_argnames="resolution")
def resize(images: jax.Array | np.ndarray, resolution: int) -> jax.Array:
    """Bilinear, antialiased resize of an NHWC batch to resolution×resolution (float32).

    Antialiasing matters when shrinking: without it, downsampled images alias. Returns the
    batch unchanged (as float32) when it already has that size.
    """
    images = jnp.asarray(images)
    if not jnp.issubdtype(images.dtype, jnp.floating):
        images = images.astype(jnp.float32)
    count, height, width, channels = images.shape
    if (height, width) == (resolution, resolution):
        return images
    return jax.image.resize(images, (count, resolution, resolution, channels),
                            method="linear", antialias=True)


def pixels_to_images(pixels: np.ndarray | jax.Array, contract: InputContract) -> jax.Array:
    """Raw uint8 NHWC pixels to the model's input: normalised, then resized to the contract's
    resolution: the training pipeline's own functions, in its order."""
    pixels = jnp.asarray(pixels)
    if pixels.ndim != 4 or pixels.shape[-1] != contract.channels:
        raise DatasetError(f"expected uint8 pixels of shape (N, H, W, {contract.channels}), "
                           f"got {tuple(pixels.shape)}")
    return resize(normalize(pixels, np.asarray(contract.mean, np.float32),
                            np.asarray(contract.std, np.float32)), contract.resolution)


def pixels_at(images: np.ndarray, resolution: int) -> np.ndarray:
    """uint8 pixels at `resolution`: the training resize, in float, rounded back to 0..255.

    What a deployed raw-pixel model is fed when the camera's frame is not already at its size.
    """
    if images.shape[1:3] == (resolution, resolution):
        return np.asarray(images, np.uint8)
    resized = np.asarray(resize(jnp.asarray(images, jnp.float32), resolution))
    return np.clip(np.rint(resized), 0, 255).astype(np.uint8)


@partial(jax.jit, static_argnames=("crop_padding", "flip", "erasing"))
def augment(images: jax.Array, key: jax.Array, *, crop_padding: int = 2,
            flip: bool = True, erasing: float = 0.0) -> jax.Array:
    """Random crop after zero padding, random horizontal flip, and random erasing with
    probability `erasing`, each image on its own.

    Padding pads with 0, which for normalised batches is the mean pixel. Vectorised over
    the batch (vmap of a dynamic slice), so its cost does not grow with Python overhead.
    The erasing key is folded from `key` rather than split off it, so crops and flips are
    the same with and without erasing, and a recipe without it trains exactly as before.
    """
    if crop_padding < 0:
        raise DatasetError(f"crop padding {crop_padding} is negative: use 0 (no crop) or more")
    crop_key, flip_key = jax.random.split(key)
    if crop_padding:
        images = _random_crop(images, crop_key, crop_padding)
    if flip:
        flipped = jax.random.bernoulli(flip_key, 0.5, (images.shape[0],))
        images = jnp.where(flipped[:, None, None, None], images[:, :, ::-1, :], images)
    if erasing:
        images = random_erasing(images, jax.random.fold_in(key, 2), erasing)
    return images


# Random erasing's rectangle (Zhong et al. 2017, "Random Erasing Data Augmentation", and
# torchvision's RandomErasing): its area a fraction of the image's, its aspect ratio h / w.
ERASED_AREA = (0.02, 0.4)
ERASED_ASPECT = (0.3, 3.3)


def random_erasing(images: jax.Array, key: jax.Array, probability: float) -> jax.Array:
    """With `probability`, set a random rectangle of each image (all channels) to 0.

    0 is the training split's mean pixel after normalisation: Cutout's fill (DeVries & Taylor
    2017), and the value the crop padding already shows the network, so erasing adds no new
    kind of pixel; random normal values would on grayscale images put noise textures where
    Fashion-MNIST has none. The aspect ratio is drawn log-uniformly, so tall and wide
    rectangles are equally likely. Whole pixels: the height is rounded and the width chosen
    so the erased area stays within ERASED_AREA of the image (exactly so at 28 and 32 px);
    a rectangle taller or wider than the image is cut to it. A mask by comparison of row and
    column indices, so every image has its own rectangle without a loop or a gather.
    """
    count, height, width, _ = images.shape
    apply_key, area_key, aspect_key, top_key, left_key = jax.random.split(key, 5)
    pixels = height * width
    area = jax.random.uniform(area_key, (count,), minval=ERASED_AREA[0],
                              maxval=ERASED_AREA[1]) * pixels
    aspect = jnp.exp(jax.random.uniform(aspect_key, (count,), minval=math.log(ERASED_ASPECT[0]),
                                        maxval=math.log(ERASED_ASPECT[1])))
    rows = jnp.clip(jnp.round(jnp.sqrt(area * aspect)), 1, height)
    most = jnp.floor(ERASED_AREA[1] * pixels / rows)  # no wider than the largest area allows
    columns = jnp.clip(jnp.minimum(jnp.ceil(area / rows), most), 1, width)
    rows, columns = rows.astype(jnp.int32), columns.astype(jnp.int32)
    top = jax.random.randint(top_key, (count,), 0, height - rows + 1)
    left = jax.random.randint(left_key, (count,), 0, width - columns + 1)
    row_index = jnp.arange(height)[None, :, None]
    column_index = jnp.arange(width)[None, None, :]
    inside = ((row_index >= top[:, None, None]) & (row_index < (top + rows)[:, None, None])
              & (column_index >= left[:, None, None])
              & (column_index < (left + columns)[:, None, None]))
    erased = jax.random.bernoulli(apply_key, probability, (count,))[:, None, None]
    return jnp.where((inside & erased)[..., None], 0.0, images).astype(images.dtype)


def _random_crop(images: jax.Array, key: jax.Array, padding: int) -> jax.Array:
    """Pad by `padding` on every side, then cut each image back at a random offset."""
    count, height, width, channels = images.shape
    padded = jnp.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    offsets = jax.random.randint(key, (count, 2), 0, 2 * padding + 1)

    def crop(image: jax.Array, offset: jax.Array) -> jax.Array:
        return jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), (height, width, channels))

    return jax.vmap(crop)(padded, offsets)

