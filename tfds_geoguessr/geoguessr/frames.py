"""The per-file work of a build: decode, convert, squash and re-encode one frame.

Pure functions of their arguments, importing only PIL and NumPy (no
TensorFlow, no TFDS), so that the build's worker processes run them without
any builder state. `setup.cfg`'s import-linter contract keeps it that way.
"""

import io
import zipfile

import numpy as np
from PIL import Image, UnidentifiedImageError

from tfds_geoguessr.geoguessr import limits

JPEG_QUALITY = 95
STORED_SIZE = 224  # The side a Kaggle frame is squashed to (the paper's input size).


class Unusable(ValueError):
    """A decodable image that is not stored; the message is the report's reason."""


DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    zipfile.BadZipFile,
    Image.DecompressionBombError,
)


def read(read_entry, entry):
    """`(bytes, None)` of a source entry, or `(None, reason)` if it cannot be read.

    Args:
        read_entry: A reader of `layout.reader` (entry -> bytes).
        entry: The `layout.Entry` to read.
    """
    try:
        return read_entry(entry), None
    except DECODE_ERRORS as error:
        return None, undecodable(error)


def convert_frame(frame, size: int, max_pixels: int):
    """`encode_example` of a `(bytes, read_error)` frame from `read`.

    The per-file work of a build (decode, convert, resize, encode); runs in
    a worker process when the build has several.
    """
    data, reason = frame
    if reason:
        return None, reason
    return encode_example(data, size, max_pixels)


def encode_example(data: bytes, size: int, max_pixels: int):
    """The stored JPEG of one file, or why it is skipped.

    Returns:
        `(jpeg_bytes, None)`, or `(None, reason)` for a file that cannot be
        decoded, is larger than `max_pixels` or has a pixel mode serving
        cannot decode.
    """
    try:
        return encode_jpeg(squash(data, size, max_pixels=max_pixels)), None
    except DECODE_ERRORS as error:
        return None, undecodable(error)


def squash(data: bytes, size: int, *, max_pixels: int | None = None) -> Image.Image:
    """Decodes an image file and squashes it to a square RGB of at most `size`.

    The side is `stored_side(size, width, height)`: `size` for any frame at
    least that large (a 1536x662 Kaggle frame gives 224x224), the frame's
    shorter side for a smaller one (a 128x128 copy stays 128x128: an
    upscaled copy would only cost build time and disk). PIL's bilinear
    resize, antialiased when shrinking: what torchvision's
    `Resize((224, 224))` did to the PIL frames in the paper. Raises OSError
    (or SyntaxError, ValueError) for data PIL cannot fully decode, and
    `Unusable` for an image above `max_pixels` (checked before decoding) or
    with a mode `to_rgb` refuses.
    """
    with Image.open(io.BytesIO(data)) as image:
        reason = max_pixels and limits.too_large(*image.size, max_pixels)
        if reason:
            raise Unusable(reason)
        image.load()
        side = stored_side(size, *image.size)
        return to_rgb(image).resize((side, side), Image.BILINEAR)


def stored_side(size: int, width: int, height: int) -> int:
    """The side of the stored square: `size`, or the frame's shorter side if smaller.

    >>> stored_side(224, 1536, 662), stored_side(224, 128, 128), stored_side(224, 300, 100)
    (224, 128, 100)
    """
    return min(size, width, height)


def to_rgb(image: Image.Image) -> Image.Image:
    """`image` as RGB, with the pixels serving's `tf.io.decode_image(channels=3)` gives.

    PIL's own `convert("RGB")` agrees with TensorFlow for modes 1, L, LA, P,
    RGB, RGBA and CMYK, but clips 16-bit grey (`I;16`) to white where
    TensorFlow (libpng) keeps the high byte. 32-bit modes (`I`, `F`: TIFF and
    the like, which serving cannot decode at all) are refused. An RGB image
    is returned as is (`convert` would copy its megabytes for nothing).

    Raises:
        Unusable: `image.mode` is `I` or `F`.
    """
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I;16"):
        grey = (np.asarray(image).astype(np.uint16) >> 8).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if image.mode in ("I", "F"):
        raise Unusable(
            f"unsupported mode: {image.mode} (32-bit pixels) is not decoded by serving; "
            "save the image as 8-bit RGB"
        )
    return image.convert("RGB")


def undecodable(error) -> str:
    """The report's reason for a file that `read` or `squash` failed on."""
    if isinstance(error, Unusable | limits.TooLarge):
        return str(error)
    if isinstance(error, UnidentifiedImageError):
        return "undecodable: not an image format PIL reads"
    return f"undecodable: {error}"


def encode_jpeg(image: Image.Image) -> bytes:
    """`image` as the JPEG the dataset stores (quality `JPEG_QUALITY`)."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()
