"""Tests for keras_geo.pipeline: eager == tf.data, flips, shapes, determinism."""

import math

import numpy as np
import pytest
import tensorflow as tf

from keras_geo import pipeline

SIZE = 32


def _red_blue(size=48):
    """Left half red, right half blue, uint8."""
    image = np.zeros((size, size, 3), np.uint8)
    image[:, : size // 2, 0] = 255
    image[:, size // 2 :, 2] = 255
    return image


def _noise(n=7, size=40, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3)).astype(np.uint8)


def _dataset(images):
    return tf.data.Dataset.from_tensor_slices((images, np.arange(len(images), dtype=np.int64)))


def _redness_left_minus_right(image):
    """Mean (R - B) of the left half minus that of the right half."""
    image = np.asarray(image, np.float64)
    redness = image[..., 0] - image[..., 2]
    half = image.shape[1] // 2
    return redness[:, :half].mean() - redness[:, half:].mean()


def test_augment_eager_equals_inside_dataset_map():
    images = _noise(3)
    seeds = [(1, 2), (3, 4), (5, 6)]
    eager = [
        pipeline.augment(img, image_size=SIZE, seed=s).numpy()
        for img, s in zip(images, seeds, strict=True)
    ]
    ds = tf.data.Dataset.from_tensor_slices((images, np.array(seeds, np.int64))).map(
        lambda img, s: pipeline.augment(img, image_size=SIZE, seed=s),
        num_parallel_calls=2,
    )
    for got, want in zip(ds, eager, strict=True):
        np.testing.assert_allclose(got.numpy(), want, atol=1e-4)
    again = pipeline.augment(images[0], image_size=SIZE, seed=(1, 2)).numpy()
    np.testing.assert_array_equal(again, eager[0])
    assert not np.allclose(eager[0], pipeline.augment(images[0], image_size=SIZE, seed=(9, 9)))


def test_augment_output_shape_dtype_range():
    for image in (_noise(1)[0], _noise(1)[0].astype(np.float32), _red_blue(64)):
        out = pipeline.augment(image, image_size=SIZE, seed=0)
        assert out.shape == (SIZE, SIZE, 3) and out.dtype == tf.float32
        assert 0.0 <= float(tf.reduce_min(out)) and float(tf.reduce_max(out)) <= 255.0
    out = pipeline.augment(_noise(1, size=30)[0][:, :20], image_size=SIZE)  # non-square, no seed
    assert out.shape == (SIZE, SIZE, 3)


def test_no_flip_keeps_red_on_the_left_and_flip_swaps_sometimes():
    image = _red_blue()
    seeds = [(i, 7) for i in range(24)]
    kept = [
        _redness_left_minus_right(pipeline.augment(image, image_size=SIZE, flip=False, seed=s))
        for s in seeds
    ]
    assert min(kept) >= -1e-3  # red never ends up on the right
    flipped = [
        _redness_left_minus_right(pipeline.augment(image, image_size=SIZE, flip=True, seed=s))
        for s in seeds
    ]
    assert min(flipped) < -10  # at least one crop shows blue left of red


def _warp1(image, affine, size):
    return pipeline._warp(image[None], affine[None], size)[0]


def test_affine_identity_flip_and_crop():
    image = tf.constant(_noise(1, size=SIZE)[0])
    full = (0.0, 0.0, float(SIZE), float(SIZE))
    same = _warp1(image, pipeline._affine(*full, False, 0.0, SIZE), SIZE)
    np.testing.assert_allclose(same.numpy(), image.numpy(), atol=1e-3)
    mirror = _warp1(image, pipeline._affine(*full, True, 0.0, SIZE), SIZE)
    np.testing.assert_allclose(mirror.numpy(), image.numpy()[:, ::-1], atol=1e-3)
    # Cropping the top-left quarter of a 2S image to S pixels: every other pixel.
    big = tf.constant(_noise(1, size=2 * SIZE)[0])
    quarter = _warp1(
        big, pipeline._affine(-0.5, -0.5, SIZE, SIZE, False, 0.0, SIZE // 2), SIZE // 2
    )
    np.testing.assert_allclose(quarter.numpy(), big.numpy()[:SIZE:2, :SIZE:2], atol=1e-3)


def test_crop_windows_follow_random_resized_crop():
    y0, x0, h, w = (
        t.numpy() for t in pipeline._crop_windows(60, 80, 500, tf.constant([3, 4], tf.int64))
    )
    assert (y0 >= 0).all() and (x0 >= 0).all()
    assert (y0 + h <= 60).all() and (x0 + w <= 80).all()
    area = h * w / (60 * 80)
    assert area.min() >= 0.07 and area.max() <= 1.0 and area.mean() < 0.8
    ratio = w / h
    assert ratio.min() > 0.7 and ratio.max() < 1.45
    assert len(set(zip(y0, x0, strict=True))) > 100  # random positions
    # Fallback for a frame too wide for any try: central crop at aspect 4/3.
    y0, x0, h, w = (t.numpy() for t in pipeline._crop_windows(10, 400, 4, tf.constant([0, 1])))
    assert (h == 10).all() and (w == 13).all() and (x0 == round((400 - 13) / 2)).all()


def test_augment_batch_gives_each_image_its_own_transform():
    image = _noise(1)[0]
    batch = pipeline.augment(np.stack([image] * 4), image_size=SIZE, seed=(1, 1)).numpy()
    assert batch.shape == (4, SIZE, SIZE, 3)
    assert not np.allclose(batch[0], batch[1])


def test_rotation_stays_within_five_degrees():
    # A horizontal line through the centre: its tilt after augmentation.
    image = np.zeros((64, 64, 3), np.uint8)
    image[31:33] = 255
    checked = 0
    for seed in range(8):
        out = pipeline.augment(image, image_size=64, flip=False, seed=seed).numpy()[..., 0]
        cols = [c for c in (8, 55) if out[:, c].max() > 100]
        if len(cols) < 2:
            continue
        rows = [np.average(np.arange(64), weights=out[:, c]) for c in cols]
        # Aspect-ratio distortion of the crop changes the angle by <= 4/3.
        tilt = math.degrees(math.atan(abs(rows[1] - rows[0]) / (cols[1] - cols[0])))
        assert tilt <= pipeline.MAX_ROTATION_DEGREES * 4 / 3 + 1
        checked += 1
    assert checked >= 3


def test_resize_for_eval():
    image = _noise(1, size=48)[0]
    out = pipeline.resize_for_eval(image, image_size=SIZE)
    assert out.shape == (SIZE, SIZE, 3) and out.dtype == tf.float32
    np.testing.assert_array_equal(
        out.numpy(), pipeline.resize_for_eval(image, image_size=SIZE).numpy()
    )
    assert 0 <= out.numpy().min() and out.numpy().max() <= 255
    same = pipeline.resize_for_eval(image, image_size=48)
    np.testing.assert_array_equal(same.numpy(), image.astype(np.float32))
    batch = pipeline.resize_for_eval(_noise(2, size=48), image_size=SIZE)
    assert batch.shape == (2, SIZE, SIZE, 3)
    np.testing.assert_allclose(
        batch.numpy()[0],
        pipeline.resize_for_eval(_noise(2, size=48)[0], image_size=SIZE).numpy(),
        atol=1e-4,
    )
    # Squash, not crop: a wide image keeps its whole width.
    wide = np.zeros((40, 160, 3), np.uint8)
    wide[:, :80, 0] = 255
    squashed = pipeline.resize_for_eval(wide, image_size=SIZE).numpy()
    assert squashed[:, : SIZE // 2 - 1, 0].min() > 250 and squashed[:, SIZE // 2 + 1 :, 0].max() < 5


def test_resize_for_eval_squashes_a_large_frame_as_the_dataset_stores_it():
    """A full-size frame goes through the 224 x 224 square the builder stores, like its copy."""
    frame = tf.image.resize(_noise(1, size=48), [662, 1536])[0].numpy().round().astype(np.uint8)
    stored = tf.image.resize(frame, [224, 224], antialias=True).numpy()
    np.testing.assert_allclose(
        pipeline.resize_for_eval(frame, image_size=SIZE).numpy(),
        pipeline.resize_for_eval(stored, image_size=SIZE).numpy(),
        atol=1e-3,
    )
    # A frame smaller than 224 px is squashed to its shorter side first, as stored.
    small = frame[:100, :300]
    np.testing.assert_allclose(
        pipeline.resize_for_eval(small, image_size=SIZE).numpy(),
        pipeline.resize_for_eval(
            tf.image.resize(small, [100, 100], antialias=True), image_size=SIZE
        ).numpy(),
        atol=1e-3,
    )


def test_resize_for_eval_eager_equals_inside_dataset_map():
    images = _noise(3, size=48)
    ds = tf.data.Dataset.from_tensor_slices(images).map(
        lambda x: pipeline.resize_for_eval(x, image_size=SIZE)
    )
    for got, image in zip(ds, images, strict=True):
        np.testing.assert_allclose(
            got.numpy(), pipeline.resize_for_eval(image, image_size=SIZE).numpy(), atol=1e-4
        )


def test_train_dataset_batches_and_shapes():
    ds = pipeline.train_dataset(_dataset(_noise(7)), image_size=SIZE, batch_size=4, seed=1)
    batches = list(ds)
    assert [b[0].shape[0] for b in batches] == [4, 3]  # drop_remainder=False
    images, labels = batches[0]
    assert images.shape[1:] == (SIZE, SIZE, 3) and images.dtype == tf.float32
    assert labels.dtype == tf.int64
    assert sorted(np.concatenate([b[1].numpy() for b in batches])) == list(range(7))
    unbatched = pipeline.train_dataset(
        _dataset(_noise(7)), image_size=SIZE, batch_size=None, seed=1
    )
    image, label = next(iter(unbatched))
    assert image.shape == (SIZE, SIZE, 3) and label.shape == ()


def test_train_dataset_is_reproducible_with_a_seed_and_changes_per_epoch():
    def run(ds):
        return [(x.numpy(), y.numpy()) for x, y in ds]

    a = pipeline.train_dataset(_dataset(_noise(6)), image_size=SIZE, batch_size=3, seed=5)
    b = pipeline.train_dataset(_dataset(_noise(6)), image_size=SIZE, batch_size=3, seed=5)
    first, second = run(a), run(a)
    for (xa, ya), (xb, yb) in zip(first, run(b), strict=True):
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_allclose(xa, xb, atol=1e-4)
    assert not all(np.allclose(x1, x2) for (x1, _), (x2, _) in zip(first, second, strict=True))


def test_eval_dataset_is_deterministic_and_ordered():
    images = _noise(5, size=48)
    ds = pipeline.eval_dataset(_dataset(images), image_size=SIZE, batch_size=2)
    first = [(x.numpy(), y.numpy()) for x, y in ds]
    second = [(x.numpy(), y.numpy()) for x, y in ds]
    assert [len(y) for _, y in first] == [2, 2, 1]
    np.testing.assert_array_equal(np.concatenate([y for _, y in first]), np.arange(5))
    for (x1, _), (x2, _) in zip(first, second, strict=True):
        np.testing.assert_array_equal(x1, x2)
    np.testing.assert_allclose(
        first[0][0][1], pipeline.resize_for_eval(images[1], image_size=SIZE).numpy(), atol=1e-4
    )
    unbatched = pipeline.eval_dataset(_dataset(images), image_size=SIZE, batch_size=None)
    assert next(iter(unbatched))[0].shape == (SIZE, SIZE, 3)


@pytest.mark.parametrize("flip", [True, False])
@pytest.mark.parametrize("static_shape", [True, False])
def test_train_dataset_flip_no_seed_and_unknown_image_shapes(flip, static_shape):
    ds = _dataset(_noise(5))
    if not static_shape:  # images of unknown size are augmented one by one
        ds = ds.map(lambda x, y: (x[: tf.random.uniform([], 39, 40, tf.int32)], y))
        assert ds.element_spec[0].shape[0] is None
    out = pipeline.train_dataset(ds, image_size=SIZE, batch_size=2, flip=flip)
    # No seed: not deterministic, so the short batch may come out before a full one.
    assert sorted(int(y.shape[0]) for _, y in out) == [1, 2, 2]
    assert next(iter(out))[0].shape[1:] == (SIZE, SIZE, 3)
    unbatched = pipeline.train_dataset(ds, image_size=SIZE, batch_size=None, flip=flip)
    assert sum(1 for _ in unbatched) == 5
