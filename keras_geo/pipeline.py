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

Evaluation (`resize_for_eval`): the frame as the dataset stores it (squashed
to at most 224 x 224, `tfds_geoguessr.geoguessr.frames.stored_side`), then
squash-resized to S x S, both with antialiasing, no crop. A full-size
1536x662 screenshot thus takes the path its 224x224 copy in the dataset took.

Both return float32 pixels in 0-255; the model normalises internally.
"""

import math
import socket
import time

import tensorflow as tf

from keras_geo.errors import UserError
from tfds_geoguessr.geoguessr import frames

CROP_SCALE = (0.08, 1.0)
CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)
MAX_ROTATION_DEGREES = 5.0
DEFAULT_SHUFFLE_BUFFER = 2048
DISPATCHER_WAIT_S = 60  # How long a tf.data service worker waits for its dispatcher.
MIN_EVAL_BATCH_SIZE = 64  # See `eval_batch_size`.
UNBATCHED_CHUNK = 32  # train_dataset(batch_size=None) augments in chunks


def _as_seed(seed):
    """Returns a stateless-op seed [2] int64 from None, an int or a pair."""
    if seed is None:
        return tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int64)
    seed = tf.convert_to_tensor(seed)
    if seed.shape.rank == 0:
        return tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)])
    return tf.cast(seed, tf.int64)


def _crop_windows(height, width, n, seed, min_area=CROP_SCALE[0]):
    """Samples torchvision's RandomResizedCrop windows for `n` images.

    Ten tries per image of area in [min_area, 1] (CROP_SCALE: the paper's)
    and log-uniform aspect in
    CROP_RATIO; the first that fits wins; else torchvision's fallback (the
    central crop with the aspect clamped to CROP_RATIO).

    Returns:
        (y0, x0, h, w), each float32 [n].
    """
    h_img, w_img = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    area_seed, ratio_seed, y_seed, x_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, num=4)
    )
    area = h_img * w_img * tf.random.stateless_uniform([n, 10], area_seed, min_area, CROP_SCALE[1])
    log_ratio = tf.random.stateless_uniform(
        [n, 10], ratio_seed, math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1])
    )
    w = tf.round(tf.sqrt(area * tf.exp(log_ratio)))
    h = tf.round(tf.sqrt(area / tf.exp(log_ratio)))
    fits = (w <= w_img) & (h <= h_img) & (w > 0) & (h > 0)
    first = tf.argmax(tf.cast(fits, tf.int32), axis=1, output_type=tf.int32)
    found = tf.reduce_any(fits, axis=1)
    ratio = w_img / h_img
    fallback_w = tf.where(ratio > CROP_RATIO[1], tf.round(h_img * CROP_RATIO[1]), w_img)
    fallback_h = tf.where(ratio < CROP_RATIO[0], tf.round(w_img / CROP_RATIO[0]), h_img)
    fallback_w, fallback_h = tf.minimum(fallback_w, w_img), tf.minimum(fallback_h, h_img)
    w = tf.where(found, tf.gather(w, first, batch_dims=1), fallback_w)
    h = tf.where(found, tf.gather(h, first, batch_dims=1), fallback_h)
    y_u = tf.random.stateless_uniform([n], y_seed)
    x_u = tf.random.stateless_uniform([n], x_seed)
    y0 = tf.where(found, tf.floor(y_u * (h_img - h + 1)), tf.round((h_img - h) / 2))
    x0 = tf.where(found, tf.floor(x_u * (w_img - w + 1)), tf.round((w_img - w) / 2))
    return y0, x0, h, w


def _affine(y0, x0, h, w, flipped, angle, image_size):
    """Output pixel -> input position for crop (y0, x0, h, w), flip, rotation.

    Arguments are scalars or [n] tensors. Returns [..., 6] float32
    `(a0, a1, a2, b0, b1, b2)`: the output pixel (x, y) of the S x S result
    samples the input at (a0 x + a1 y + a2, b0 x + b1 y + b2) (pixel centres
    at integer coordinates).
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
        ],
        axis=-1,
    )


def _random_affines(shape, image_size, flip, seed, min_area=CROP_SCALE[0]):
    """Samples crop windows, flips and angles for a batch; returns [N, 6]."""
    n, height, width = shape[0], shape[1], shape[2]
    crop_seed, flip_seed, angle_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, num=3)
    )
    y0, x0, h, w = _crop_windows(height, width, n, crop_seed, min_area)
    flipped = tf.logical_and(flip, tf.random.stateless_uniform([n], flip_seed) < 0.5)
    max_angle = MAX_ROTATION_DEGREES * math.pi / 180.0
    angle = tf.random.stateless_uniform([n], angle_seed, -max_angle, max_angle)
    return _affine(y0, x0, h, w, flipped, angle, image_size)


@tf.function(jit_compile=True)
def _warp(images, affines, image_size):
    """Bilinear resampling of `images` [N, H, W, C] on affine grids -> [N, S, S, C].

    Positions beyond the frame take the nearest edge pixel. XLA fuses the
    whole thing into one loop (about 2x faster than ImageProjectiveTransform
    on CPU, also inside tf.data).
    """
    shape = tf.shape(images)
    n, h, w = shape[0], shape[1], shape[2]
    r = tf.range(image_size, dtype=tf.float32)
    y, x = tf.meshgrid(r, r, indexing="ij")
    a = affines[:, :, None, None]  # [N, 6, 1, 1]
    xi = a[:, 0] * x + a[:, 1] * y + a[:, 2]  # [N, S, S]
    yi = a[:, 3] * x + a[:, 4] * y + a[:, 5]
    x0, y0 = tf.floor(xi), tf.floor(yi)
    fx, fy = (xi - x0)[..., None], (yi - y0)[..., None]

    def clip(v, size):
        return tf.cast(tf.clip_by_value(v, 0.0, tf.cast(size - 1, tf.float32)), tf.int32)

    xa, xb, ya, yb = clip(x0, w), clip(x0 + 1, w), clip(y0, h), clip(y0 + 1, h)
    flat = tf.reshape(images, [n * h * w, -1])
    base = (tf.range(n) * h * w)[:, None, None]

    def at(yy, xx):
        return tf.cast(tf.gather(flat, base + yy * w + xx), tf.float32)

    top = at(ya, xa) + fx * (at(ya, xb) - at(ya, xa))
    bottom = at(yb, xa) + fx * (at(yb, xb) - at(yb, xa))
    return top + fy * (bottom - top)


def augment(image, *, image_size, flip=True, seed=None, min_area=CROP_SCALE[0]):
    """The paper's training augmentation of one image or of a batch.

    Random resized crop (area 8-100%, aspect 3/4-4/3) resized to
    `image_size`, random horizontal flip if `flip`, random rotation within
    +-5 degrees; one bilinear resampling. In a batch every image gets its
    own crop, flip and angle.

    Args:
        image: [H, W, 3] or [N, H, W, 3] RGB, uint8 or float in 0-255.
        image_size: Output side S.
        flip: Randomly mirror left-right (swaps the driving side).
        seed: None (random), an int, or a [2] integer tensor (stateless ops:
            the same seed gives the same result eagerly and in tf.data).
        min_area: Smallest crop, as a fraction of the image area (the
            paper's torchvision default: 0.08).

    Returns:
        float32 [S, S, 3] (or [N, S, S, 3]) in 0-255.
    """
    image = tf.convert_to_tensor(image)
    single = image.shape.rank == 3
    images = image[None] if single else image
    affines = _random_affines(tf.shape(images), image_size, flip, _as_seed(seed), min_area)
    out = _warp(images, affines, image_size)
    out = tf.ensure_shape(out, [images.shape[0], image_size, image_size, 3])
    return out[0] if single else out


def resize_for_eval(image, *, image_size):
    """Squashes as the dataset stores a frame, then to `image_size` (antialiased), float32 0-255.

    First to the stored square (`frames.stored_side`: 224 px, or the shorter
    side of a smaller image), as `keras-geo data build` does; then to
    `image_size` x `image_size`. A step to the size the image already has is
    skipped, so a stored frame goes through the second step alone.

    Accepts one image [H, W, 3] or a batch [N, H, W, 3], uint8 or float. An
    image already at the size is returned unchanged (as float32).
    """
    image = tf.cast(tf.convert_to_tensor(image), tf.float32)
    hw = tf.shape(image)[-3:-1]
    stored = tf.minimum(frames.STORED_SIZE, tf.reduce_min(hw))
    image = _squash(image, hw, stored)
    out = _squash(image, tf.stack([stored, stored]), image_size)
    out = tf.clip_by_value(out, 0.0, 255.0)
    return tf.ensure_shape(out, image.shape[:-3] + [image_size, image_size, 3])


def _squash(image, hw, side):
    """`image` ([..., H, W, C] of size `hw`) squash-resized to `side` x `side`, antialiased."""
    return tf.cond(
        tf.reduce_all(tf.equal(hw, side)),
        lambda: image,
        lambda: tf.image.resize(image, tf.stack([side, side]), antialias=True),
    )


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
    augment_in_batches=None,
    min_area=CROP_SCALE[0],
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
        augment_in_batches: Augment whole batches (one XLA call per batch,
            about 25% less CPU per image) instead of single images; needs
            images of one static size. None: whenever the size is static.
        min_area: Smallest random crop, fraction of the image area (`augment`).

    Returns:
        `(float32 images [B, S, S, 3] in 0-255, labels)`.
    """
    if deterministic is None:
        deterministic = seed is not None
    if shuffle_buffer:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    if augment_in_batches is None:
        augment_in_batches = ds.element_spec[0].shape[:2].is_fully_defined()
    if augment_in_batches:
        # Same-size images: batch first, augment whole batches (one XLA call
        # per batch instead of one per image).
        ds = ds.batch(
            batch_size or UNBATCHED_CHUNK,
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=deterministic,
        )
        ds = _augment_map(tf.data.Dataset.zip(ds, seeds), image_size, flip, deterministic, min_area)
        if batch_size is None:
            ds = ds.unbatch()
        return _finish(ds, None, deterministic)
    ds = _augment_map(tf.data.Dataset.zip(ds, seeds), image_size, flip, deterministic, min_area)
    return _finish(ds, batch_size, deterministic)


def _augment_map(ds, image_size, flip, deterministic, min_area):
    def _map(example, pair):
        image, label = example
        image = augment(image, image_size=image_size, flip=flip, seed=pair, min_area=min_area)
        return image, label

    return ds.map(_map, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)


def through_service(ds, service, *, job_name=None):
    """Moves the work of `ds` (decoding, augmentation, batching) to a tf.data service.

    `processing_mode="distributed_epoch"`: the service's workers split the
    source between them, so each example is produced once per epoch, as
    without the service (`"parallel_epochs"` would have every worker
    produce the whole epoch). The split is by file, so load TFDS splits
    with `datasets.load_split(..., for_service=True)`. Workers read the
    dataset files at the paths this process sees.

    Args:
        ds: Any dataset, e.g. from `train_dataset`.
        service: The dispatcher's address, `grpc://HOST:PORT`.
        job_name: Consumers naming the same job share its epoch (e.g. the
            workers of a multi-worker run); None: a job of their own.
    """
    if "://" not in service:
        service = f"grpc://{service}"
    check_dispatcher(service)
    return ds.apply(
        tf.data.experimental.service.distribute(
            processing_mode="distributed_epoch", service=service, job_name=job_name
        )
    ).prefetch(tf.data.AUTOTUNE)


def check_dispatcher(service, timeout_s=5.0, *, flag="--data-service"):
    """Raises UserError unless a dispatcher listens at `service` (`grpc://HOST:PORT`).

    The tf.data service client (and a worker) waits for its dispatcher for
    ever: a wrong address would hang the run with no message.
    """
    address = service.split("://", 1)[-1]
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except (OSError, ValueError) as error:
        raise UserError(
            f"{flag} {service}: no dispatcher answers there ({error}); start one with "
            "`keras-geo data-service dispatcher --port PORT` or fix the address"
        ) from None


def wait_for_dispatcher(service, timeout_s=None, *, flag="--dispatcher"):
    """Returns once a dispatcher listens at `service`; UserError after `timeout_s` seconds.

    For a worker started with (or before) its dispatcher: it may take a few
    seconds to listen, but not a minute. `timeout_s` None: `DISPATCHER_WAIT_S`.
    """
    timeout_s = DISPATCHER_WAIT_S if timeout_s is None else timeout_s
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return check_dispatcher(service, timeout_s=1.0, flag=flag)
        except UserError as error:
            if time.monotonic() >= deadline:
                raise UserError(f"{error} (waited {timeout_s:g} s)") from None
        time.sleep(0.5)


def eval_batch_size(train_batch_size, views=1):
    """The batch size for evaluating a model trained at `train_batch_size`.

    Inference keeps no activations for a backward pass, so evaluation batches
    are at least `MIN_EVAL_BATCH_SIZE` images: a small training batch would
    otherwise make evaluation per-step-overhead bound (on the 2-core CPU the
    demo's 1,000 test scenes took 19 s at 16 images per batch, 11 s at 64).
    With `views` test-time views per image the model sees `views` times the
    batch, so the training batch size is kept.

    >>> eval_batch_size(16), eval_batch_size(256), eval_batch_size(16, views=5)
    (64, 256, 16)
    """
    if views > 1:
        return train_batch_size
    return max(train_batch_size, MIN_EVAL_BATCH_SIZE)


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
