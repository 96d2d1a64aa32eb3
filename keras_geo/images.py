"""The image boundary: encoded bytes in, checked model-input pixels out.

Every way an image reaches a model (`keras-geo predict`, the app, the
exported SavedModel's `serving_default`) goes through this module:

- `check_image_bytes`: in Python, before anything is decoded: empty bytes,
  a format not in `FORMATS` (told by its file signature), more bytes or
  header pixels than the budget of `tfds_geoguessr.geoguessr.limits`
  (`KERAS_GEO_MAX_PIXELS`) and animated WebP are refused with one line.
- `decode_frame`: in TensorFlow ops, so that it is traced into the SavedModel
  and runs in TF Serving without Python: the same byte and pixel budget
  (the header read by `declared_pixels`), the first frame of a GIF only
  (`keras_geo.animation`); `decode_image` adds the evaluation resize
  (`model_input`: `keras_geo.pipeline.resize_for_eval`, the very function
  evaluation uses).
- `decode` (both checks, then the frame, once) and `decode_errors` (a
  decode failure as one line) serve Python callers: `keras_geo.predict`
  and the app.
"""

import contextlib
import functools
import io
import warnings

import tensorflow as tf
from PIL import Image

from keras_geo import animation, pipeline
from keras_geo.errors import UserError, one_line
from tfds_geoguessr.geoguessr import limits

# File signatures of the formats `tf.io.decode_image` reads (WebP: RIFF....WEBP).
IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")
FORMATS = "JPEG, PNG, GIF, BMP or WebP"
CORRUPT = "corrupt or truncated image: the decoder failed"
TOO_LARGE = "image too large"  # How `decode_image`'s own budget checks begin.


def max_pixels():
    """The pixel limit; UserError if `KERAS_GEO_MAX_PIXELS` is not a positive integer."""
    try:
        return limits.max_pixels()
    except ValueError as error:
        raise UserError(str(error)) from None


def check_image_bytes(image_bytes):
    """Refuses empty bytes, non-images and images over the budget, before decoding.

    The format is told by its signature and the size by its header (read by
    PIL, nothing decoded), so an image above the budget of
    `tfds_geoguessr.geoguessr.limits` (bytes, then pixels) is refused before
    it takes memory. Only the first frame of a GIF is ever decoded.

    Raises:
        ValueError: one line saying what is wrong.
    """
    if not image_bytes:
        raise ValueError("empty file, not an image")
    if not image_bytes.startswith(IMAGE_SIGNATURES) and image_bytes[8:12] != b"WEBP":
        raise ValueError(f"not an image ({FORMATS} expected)")
    limit = max_pixels()
    if len(image_bytes) > limits.max_file_bytes(limit):
        raise limits.too_many_bytes(len(image_bytes), limits.max_file_bytes(limit))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(image_bytes)) as image:
                width, height = image.size  # A GIF's: its screen and first frame's.
                animated_webp = image.format == "WEBP" and getattr(image, "is_animated", False)
    except Image.DecompressionBombError:  # Pillow's own limit, higher than ours.
        raise ValueError(
            f"too large: above the limit of {limit / 1e6:.1f} MP ({limits.MAX_PIXELS_ENV})"
        ) from None
    except Exception:  # noqa: BLE001 (an unreadable header is a corrupt image)
        raise ValueError(CORRUPT) from None
    reason = limits.too_large(width, height, limit)
    if reason:
        raise ValueError(reason)
    if animated_webp:  # TensorFlow decodes animated WebP as RGBA only.
        raise ValueError("animated WebP is not supported: save its first frame as PNG or JPEG")


def decode(image_bytes):
    """Checks one encoded image and decodes its first frame: the one decode of an upload.

    `check_image_bytes` first, then `decode_frame` (traced once per pixel
    limit), so the frame has passed both sides of the boundary.

    Returns:
        uint8 `[H, W, 3]` RGB numpy array.

    Raises:
        ValueError: one line saying what is wrong (`decode_errors`).
    """
    check_image_bytes(image_bytes)
    with decode_errors():
        return _traced_decode_frame(max_pixels())(tf.constant(image_bytes)).numpy()


@functools.lru_cache(maxsize=4)
def _traced_decode_frame(limit):
    # Traced: a GIF's first-frame cut is a loop, slow step by step in eager mode.
    return tf.function(
        lambda image_bytes: decode_frame(image_bytes, max_pixels=limit),
        input_signature=[tf.TensorSpec([], tf.string)],
    )


@contextlib.contextmanager
def decode_errors():
    """Turns TensorFlow's decode failures into the boundary's one-line `ValueError`.

    `decode_frame`'s own budget checks (a SavedModel's: its export's) keep
    their reason ("image too large: ..."); any other failure is `CORRUPT`.
    """
    try:
        yield
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as error:
        text = str(error.message)
        if TOO_LARGE in text:
            reason = text[text.index(TOO_LARGE) :].split("]")[0]
            raise ValueError(one_line(reason)) from None
        raise ValueError(CORRUPT) from None


def decode_image(image_bytes, *, image_size, max_pixels=None):
    """Decodes one encoded image and resizes it exactly as evaluation does.

    `decode_frame`, then `model_input`.

    Args:
        image_bytes: scalar `tf.string`, an encoded JPEG, PNG, GIF (first
            frame), BMP or WebP image of any size.
        image_size: side of the square model input, pixels.
        max_pixels: the pixel limit; None: `limits.max_pixels()` (read when
            traced, so an export keeps the limit it was exported with).

    Returns:
        float32 `[image_size, image_size, 3]` RGB pixels in 0-255.
    """
    return model_input(decode_frame(image_bytes, max_pixels=max_pixels), image_size)


def decode_frame(image_bytes, *, max_pixels=None):
    """Decodes the first frame of one encoded image, within the budget, in TensorFlow ops.

    The input is held to the budget of `tfds_geoguessr.geoguessr.limits`
    before decoding: more bytes than `limits.max_file_bytes`, or more pixels
    than `max_pixels` declared in the header (for a GIF: its screen or its
    first frame, whichever is larger), fail with `InvalidArgumentError`
    ("image too large: ...") instead of taking gigabytes of memory. Only the
    first frame of an animated GIF is decoded (`keras_geo.animation`).

    Args:
        image_bytes: scalar `tf.string`, an encoded image.
        max_pixels: the pixel limit; None: `limits.max_pixels()`, read when traced.

    Returns:
        uint8 `[H, W, 3]` RGB pixels.
    """
    limit = limits.max_pixels() if max_pixels is None else max_pixels
    max_bytes = limits.max_file_bytes(limit)
    check_bytes = tf.debugging.assert_less_equal(
        tf.cast(tf.strings.length(image_bytes), tf.int64),
        tf.constant(max_bytes, tf.int64),
        message=f"{TOO_LARGE}: the file holds more than {max_bytes / 1e6:.1f} MB, the "
        f"limit (4 bytes per pixel of {limits.MAX_PIXELS_ENV})",
    )
    with tf.control_dependencies([check_bytes]):
        image_bytes, frame_pixels = animation.first_gif_frame(image_bytes)
    check_pixels = tf.debugging.assert_less_equal(
        tf.maximum(declared_pixels(image_bytes), frame_pixels),
        tf.constant(limit, tf.int64),
        message=f"{TOO_LARGE}: above the limit of {limit / 1e6:.1f} MP ({limits.MAX_PIXELS_ENV})",
    )
    with tf.control_dependencies([check_pixels]):
        return tf.io.decode_image(image_bytes, channels=3, expand_animations=False)


def model_input(image, image_size):
    """The evaluation resize of `[H, W, 3]` pixels: float32 `[image_size, image_size, 3]`."""
    image = pipeline.resize_for_eval(image, image_size=image_size)
    return tf.ensure_shape(tf.cast(image, tf.float32), [image_size, image_size, 3])


def declared_pixels(image_bytes):
    """Width x height from an encoded image's header (int64; 0 if unknown).

    Reads the first 30 bytes only: PNG (IHDR), GIF, BMP (Windows headers) and
    WebP (VP8, VP8L, VP8X) headers, and JPEG through
    `tf.image.extract_jpeg_shape`. A header that is not what its signature
    promises gives 0: the decoder then names the file corrupt.
    """
    # Padded: `substr` fails ("pos 12 out of range") past the end of a short input,
    # and no signature below holds a zero byte, so the padding never matches one.
    padded = image_bytes + b"\0" * 30
    head = tf.cast(tf.io.decode_raw(tf.strings.substr(padded, 0, 30), tf.uint8), tf.int64)

    def number(start, length, big_endian=False):
        order = range(length - 1, -1, -1) if big_endian else range(length)
        return sum(head[start + i] * 256**k for k, i in enumerate(order))

    def starts(prefix, at=0):
        return tf.equal(tf.strings.substr(padded, at, len(prefix)), prefix)

    vp8l_bits = number(21, 4)
    sizes = [
        (starts(b"IHDR", 12), number(16, 4, True) * number(20, 4, True)),  # PNG
        (starts(b"GIF8"), number(6, 2) * number(8, 2)),
        (
            starts(b"BM") & tf.reduce_any(tf.equal(number(14, 4), [40, 52, 56, 108, 124])),
            tf.abs(_int32(number(18, 4))) * tf.abs(_int32(number(22, 4))),
        ),
        (starts(b"VP8X", 12), (number(24, 3) + 1) * (number(27, 3) + 1)),
        (starts(b"VP8 ", 12), (number(26, 2) % 16384) * (number(28, 2) % 16384)),
        (
            starts(b"VP8L", 12),
            (vp8l_bits % 16384 + 1) * ((vp8l_bits // 16384) % 16384 + 1),
        ),
    ]
    pixels = tf.cond(
        starts(b"\xff\xd8"),
        lambda: tf.reduce_prod(tf.cast(tf.image.extract_jpeg_shape(image_bytes)[:2], tf.int64)),
        lambda: tf.constant(0, tf.int64),
    )
    for matches, size in sizes:
        pixels = tf.where(matches, size, pixels)
    return pixels


def _int32(value):
    """An unsigned 32-bit header field read as signed (BMP heights may be negative)."""
    return tf.where(value >= 2**31, value - 2**32, value)
