"""Input pipeline: the paper's train augmentation and eval resizing in tf.data.

Everything here is TensorFlow graph code (no Python functions in the map),
so it runs inside `tf.data.Dataset.map` on all cores and also eagerly.

Training augmentation (`augment`), as the authors' torchvision pipeline:
RandomResizedCrop(S, scale=(0.08, 1), ratio=(3/4, 4/3)), RandomHorizontalFlip
(optional: a flip swaps the driving side), RandomRotation(5 degrees). The crop,
the flip, the rotation and the resize are fused into ONE bilinear affine
resampling (XLA-compiled: faster, and sharper than three resamplings).
Difference from torchvision: where the rotated output reaches outside the
crop, it shows the surrounding image (edge pixels beyond the frame border)
instead of black corners.

Evaluation (`resize_for_eval`): squash-resize to S x S with antialiasing (the
frames are already squashed to 224 x 224 in the dataset), no crop.

Both return float32 pixels in 0-255; the model normalises internally.
"""

import math

import tensorflow as tf

CROP_SCALE = (0.08, 1.0)
CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)
MAX_ROTATION_DEGREES = 5.0
DEFAULT_SHUFFLE_BUFFER = 2048


def _as_seed(seed):
    """Returns a stateless-op seed [2] int64 from None, an int or a pair."""
    if seed is None:
        return tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int64)
    seed = tf.convert_to_tensor(seed)
    if seed.shape.rank == 0:
        return tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)])
    return tf.cast(seed, tf.int64)


def _crop_window(shape, seed):
    """Samples torchvision's RandomResizedCrop window: (y0, x0, h, w) floats."""
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape,
        bounding_boxes=tf.zeros([1, 0, 4]),
        seed=seed,
        min_object_covered=0.0,
        aspect_ratio_range=CROP_RATIO,
        area_range=CROP_SCALE,
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    begin = tf.cast(begin, tf.float32)
    size = tf.cast(size, tf.float32)
    return begin[0], begin[1], size[0], size[1]


def _affine(y0, x0, h, w, flipped, angle, image_size):
    """Output pixel -> input position for crop (y0, x0, h, w), flip, rotation.

    Returns [6] float32 `(a0, a1, a2, b0, b1, b2)`: the output pixel (x, y)
    of the S x S result samples the input at (a0 x + a1 y + a2,
    b0 x + b1 y + b2) (pixel centres at integer coordinates).
    """
    s = float(image_size)
    sx, sy = w / s, h / s
    sign = tf.where(flipped, -1.0, 1.0)
    shift = tf.where(flipped, s - 1.0, 0.0)
    cos, sin = tf.cos(angle), tf.sin(angle)
    c = (s - 1.0) / 2.0  # rotation about the output centre
    return tf.stack(
        [
            sx * sign * cos,
            -sx * sign * sin,
            x0 + sx * (shift + sign * (c - cos * c + sin * c) + 0.5) - 0.5,
            sy * sin,
            sy * cos,
            y0 + sy * (c - sin * c - cos * c + 0.5) - 0.5,
        ]
    )


def _random_affine(shape, image_size, flip, seed):
    """Samples the crop window, flip and angle; returns `_affine`'s [6]."""
    crop_seed, flip_seed, angle_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, num=3)
    )
    y0, x0, h, w = _crop_window(shape, crop_seed)
    flipped = tf.logical_and(flip, tf.random.stateless_uniform([], flip_seed) < 0.5)
    max_angle = MAX_ROTATION_DEGREES * math.pi / 180.0
    angle = tf.random.stateless_uniform([], angle_seed, -max_angle, max_angle)
    return _affine(y0, x0, h, w, flipped, angle, image_size)


@tf.function(jit_compile=True)
def _warp(image, affine, image_size):
    """Bilinear resampling of `image` [H, W, C] on the affine grid, S x S.

    Positions beyond the frame take the nearest edge pixel. XLA fuses the
    whole thing into one loop (about 2x faster than ImageProjectiveTransform
    on CPU, also inside tf.data).
    """
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    r = tf.range(image_size, dtype=tf.float32)
    y, x = tf.meshgrid(r, r, indexing="ij")
    xi = affine[0] * x + affine[1] * y + affine[2]
    yi = affine[3] * x + affine[4] * y + affine[5]
    x0, y0 = tf.floor(xi), tf.floor(yi)
    fx, fy = (xi - x0)[..., None], (yi - y0)[..., None]

    def clip(v, n):
        return tf.cast(tf.clip_by_value(v, 0.0, tf.cast(n - 1, tf.float32)), tf.int32)

    xa, xb, ya, yb = clip(x0, w), clip(x0 + 1, w), clip(y0, h), clip(y0 + 1, h)

    def at(yy, xx):
        return tf.cast(tf.gather_nd(image, tf.stack([yy, xx], axis=-1)), tf.float32)

    top = at(ya, xa) + fx * (at(ya, xb) - at(ya, xa))
    bottom = at(yb, xa) + fx * (at(yb, xb) - at(yb, xa))
    return top + fy * (bottom - top)


def augment(image, *, image_size, flip=True, seed=None):
    """The paper's training augmentation of one image.

    Random resized crop (area 8-100%, aspect 3/4-4/3) resized to
    `image_size`, random horizontal flip if `flip`, random rotation within
    +-5 degrees; one bilinear resampling.

    Args:
        image: [H, W, 3] RGB, uint8 or float in 0-255.
        image_size: Output side S.
        flip: Randomly mirror left-right (swaps the driving side).
        seed: None (random), an int, or a [2] integer tensor (stateless ops:
            the same seed gives the same result eagerly and in tf.data).

    Returns:
        float32 [S, S, 3] in 0-255.
    """
    image = tf.convert_to_tensor(image)
    affine = _random_affine(tf.shape(image), image_size, flip, _as_seed(seed))
    out = _warp(image, affine, image_size)
    return tf.ensure_shape(out, [image_size, image_size, 3])


def resize_for_eval(image, *, image_size):
    """Squash-resizes to `image_size` x `image_size` (antialiased), float32 0-255.

    Accepts one image [H, W, 3] or a batch [N, H, W, 3], uint8 or float. An
    image already at the size is returned unchanged (as float32).
    """
    image = tf.cast(tf.convert_to_tensor(image), tf.float32)
    hw = tf.shape(image)[-3:-1]
    same = tf.reduce_all(tf.equal(hw, image_size))
    out = tf.cond(
        same,
        lambda: image,
        lambda: tf.image.resize(image, [image_size, image_size], antialias=True),
    )
    out = tf.clip_by_value(out, 0.0, 255.0)
    return tf.ensure_shape(out, image.shape[:-3] + [image_size, image_size, 3])


def _options(deterministic):
    options = tf.data.Options()
    options.deterministic = deterministic
    options.autotune.enabled = True
    options.experimental_optimization.map_parallelization = True
    return options


def _finish(ds, batch_size, deterministic):
    if batch_size is not None:
        ds = ds.batch(
            batch_size,
            drop_remainder=False,
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=deterministic,
        )
    return ds.prefetch(tf.data.AUTOTUNE).with_options(_options(deterministic))


def train_dataset(
    ds,
    *,
    image_size,
    batch_size,
    flip=True,
    seed=None,
    shuffle_buffer=DEFAULT_SHUFFLE_BUFFER,
    deterministic=None,
):
    """Shuffled, augmented, batched, prefetched training stream.

    Args:
        ds: Unbatched `(uint8 image [H, W, 3], label)` dataset.
        image_size: Model input side S.
        batch_size: Batch size, or None for an unbatched stream.
        flip: Random horizontal flips (the paper: yes).
        seed: None, or an int making shuffling and augmentation reproducible
            (each epoch still gets new crops and a new order).
        shuffle_buffer: Elements in the shuffle buffer (0: no shuffling).
        deterministic: Keep element order through parallel maps; None: only
            when `seed` is given.

    Returns:
        `(float32 images [B, S, S, 3] in 0-255, labels)`.
    """
    if deterministic is None:
        deterministic = seed is not None
    if shuffle_buffer:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    ds = tf.data.Dataset.zip(ds, seeds)

    def _map(example, pair):
        image, label = example
        return augment(image, image_size=image_size, flip=flip, seed=pair), label

    ds = ds.map(_map, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    return _finish(ds, batch_size, deterministic)


def eval_dataset(ds, *, image_size, batch_size):
    """Resized (no augmentation), batched, prefetched evaluation stream, in order.

    Args:
        ds: Unbatched `(uint8 image [H, W, 3], label)` dataset.
        image_size: Model input side S.
        batch_size: Batch size, or None for an unbatched stream.

    Returns:
        `(float32 images [B, S, S, 3] in 0-255, labels)`, deterministic.
    """
    ds = ds.map(
        lambda image, label: (resize_for_eval(image, image_size=image_size), label),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return _finish(ds, batch_size, True)
