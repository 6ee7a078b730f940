"""On-device preprocessing: statistics, normalisation, resizing, crop, flip and erasing
augmentation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mnsearch.data.datasets import DatasetError
from mnsearch.train.preprocess import (
    ERASED_AREA,
    augment,
    channel_statistics,
    normalize,
    random_erasing,
    resize,
)


def _batch(count=16, size=6, channels=2, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, channels), np.uint8)


def test_channel_statistics_and_normalize():
    images = _batch()
    images[..., 1] = 9  # a constant channel must not divide by zero
    mean, std = channel_statistics(images)
    assert mean.dtype == np.float32 and mean.shape == (2,)
    np.testing.assert_allclose(mean[0], (images[..., 0] / 255).mean(), rtol=1e-5)
    np.testing.assert_allclose(std[0], (images[..., 0] / 255).std(), rtol=1e-5)
    assert std[1] == 1.0
    normalized = normalize(images, mean, std)
    assert normalized.dtype == jnp.float32 and normalized.shape == images.shape
    np.testing.assert_allclose(np.asarray(normalized[..., 0]).mean(), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(normalized[..., 0]).std(), 1.0, rtol=1e-4)
    with pytest.raises(DatasetError, match="non-empty"):
        channel_statistics(images[:0])


def test_resize_shapes_and_no_op():
    images = jnp.asarray(_batch(2, 8, 3), jnp.float32)
    assert resize(images, 16).shape == (2, 16, 16, 3)
    assert resize(images, 4).shape == (2, 4, 4, 3)
    np.testing.assert_array_equal(resize(images, 8), images)
    constant = jnp.full((1, 8, 8, 1), 5.0)
    np.testing.assert_allclose(resize(constant, 3), 5.0, rtol=1e-6)  # antialiasing preserves DC


def test_augment_is_deterministic_per_key_and_keeps_shape():
    images = jnp.asarray(_batch(), jnp.float32)
    key = jax.random.key(0)
    first = augment(images, key)
    assert first.shape == images.shape and first.dtype == images.dtype
    np.testing.assert_array_equal(first, augment(images, key))
    assert not np.array_equal(first, augment(images, jax.random.key(1)))
    raw_key = augment(images, jax.random.PRNGKey(0))  # legacy uint32 keys work too
    assert raw_key.shape == images.shape


def test_flip_really_flips_each_image_or_leaves_it():
    images = jnp.asarray(_batch(32), jnp.float32)
    flipped = np.asarray(augment(images, jax.random.key(2), crop_padding=0, flip=True))
    mirrored = np.asarray(images)[:, :, ::-1, :]
    is_flipped = np.array([np.array_equal(out, mirror) for out, mirror
                           in zip(flipped, mirrored, strict=True)])
    is_kept = np.array([np.array_equal(out, image) for out, image
                        in zip(flipped, np.asarray(images), strict=True)])
    assert (is_flipped | is_kept).all()
    assert 0 < is_flipped.sum() < 32


def test_crop_is_a_shifted_window_of_the_zero_padded_image():
    padding = 2
    images = np.asarray(_batch(12), np.float32) + 1.0  # no zeros in the images themselves
    cropped = np.asarray(augment(jnp.asarray(images), jax.random.key(3), crop_padding=padding,
                                 flip=False))
    padded = np.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    offsets = set()
    for index, out in enumerate(cropped):
        matches = [(dy, dx) for dy in range(2 * padding + 1) for dx in range(2 * padding + 1)
                   if np.array_equal(out, padded[index, dy:dy + 6, dx:dx + 6])]
        assert matches, f"image {index} is not a window of its padded original"
        offsets.add(matches[0])
    assert len(offsets) > 1  # offsets differ per image


def test_augment_inside_jit_and_bad_padding():
    images = jnp.asarray(_batch(4), jnp.float32)
    key = jax.random.key(5)
    with pytest.raises(DatasetError, match="negative"):
        augment(images, key, crop_padding=-1)

    @jax.jit
    def step(batch, step_key):
        return augment(batch, step_key, crop_padding=1).sum()

    np.testing.assert_allclose(step(images, key), augment(images, key, crop_padding=1).sum(),
                               rtol=1e-5)


def _erased_rectangles(images: np.ndarray, erased: np.ndarray) -> list[tuple[int, int]]:
    """(height, width) of the changed pixels of each image, checked to be one rectangle set
    to 0 in every channel, everything else untouched."""
    shapes = []
    for image, out in zip(images, erased, strict=True):
        changed = (out != image).any(axis=-1)
        rows, columns = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
        if not len(rows):
            shapes.append((0, 0))
            continue
        box = (slice(rows[0], rows[-1] + 1), slice(columns[0], columns[-1] + 1))
        assert changed[box].all() and changed.sum() == changed[box].size, "not a rectangle"
        assert (out[box] == 0).all()
        shapes.append((len(rows), len(columns)))
    return shapes


@pytest.mark.parametrize("size", [28, 32])
def test_erasing_at_probability_1_sets_one_rectangle_of_each_image_to_0(size):
    images = np.random.default_rng(size).normal(1.0, 1.0, (512, size, size, 2))
    images = np.where(images == 0, 1.0, images).astype(np.float32)  # no pixel already 0
    erased = np.asarray(random_erasing(jnp.asarray(images), jax.random.key(7), 1.0))
    shapes = np.array(_erased_rectangles(images, erased))
    fractions = shapes.prod(axis=1) / size**2
    assert (fractions >= ERASED_AREA[0]).all() and (fractions <= ERASED_AREA[1]).all()
    assert len(set(map(tuple, shapes))) > 50  # each image its own rectangle
    assert (shapes[:, 0] > shapes[:, 1]).any() and (shapes[:, 0] < shapes[:, 1]).any()


def test_erasing_probability_0_is_the_identity_and_a_key_gives_one_result():
    images = jnp.asarray(_batch(64, 28, 1), jnp.float32) + 1.0
    key = jax.random.key(4)
    np.testing.assert_array_equal(random_erasing(images, key, 0.0), images)
    np.testing.assert_array_equal(augment(images, key, erasing=0.0), augment(images, key))
    half = np.asarray(augment(images, key, crop_padding=0, flip=False, erasing=0.5))
    np.testing.assert_array_equal(
        half, augment(images, key, crop_padding=0, flip=False, erasing=0.5))
    erased = np.array([not np.array_equal(out, image)
                       for out, image in zip(half, np.asarray(images), strict=True)])
    assert 10 < erased.sum() < 54  # about half of 64
    assert not np.array_equal(half, augment(images, jax.random.key(5), crop_padding=0,
                                            flip=False, erasing=0.5))


def test_erasing_leaves_the_crops_and_flips_of_a_key_unchanged():
    """The erasing key is folded, not split: a recipe without erasing augments as before."""
    images = jnp.asarray(_batch(32, 28, 1), jnp.float32) + 1.0
    key = jax.random.key(6)
    plain = np.asarray(augment(images, key))
    erased = np.asarray(augment(images, key, erasing=1.0))
    kept = erased != 0
    np.testing.assert_array_equal(erased[kept], plain[kept])
