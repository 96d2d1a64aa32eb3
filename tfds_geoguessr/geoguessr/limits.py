"""The pixel limit shared by the dataset builder, `keras-geo predict` and the export.

A small compressed file can hold a huge image (a 12000x12000 PNG of 0.4 MB
decodes to 432 MB of RGB and far more during resizing), so every decoder of
keras-geo refuses images above `max_pixels()` before decoding them.
`keras_geo` imports this module; it imports nothing of `keras_geo`.
"""

import os

MAX_PIXELS = 50_000_000  # Default limit: 50 megapixels (a Kaggle frame is 1 MP).
MAX_PIXELS_ENV = "KERAS_GEO_MAX_PIXELS"  # Overrides MAX_PIXELS when set.


def max_pixels() -> int:
    """The pixel limit: `$KERAS_GEO_MAX_PIXELS` if set, else `MAX_PIXELS`.

    Raises:
        ValueError: the variable is set but is not a positive integer.
    """
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return MAX_PIXELS
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{MAX_PIXELS_ENV} must be a positive integer. Received: {text!r}")
    return int(text)


def too_large(width: int, height: int, limit: int) -> str | None:
    """The one-line reason a `width` x `height` image is refused, or None.

    Example: `too_large(12000, 12000, 50_000_000)` returns "too large: 12000x12000
    pixels (144.0 MP) is above the limit of 50.0 MP (KERAS_GEO_MAX_PIXELS)".
    """
    if width * height <= limit:
        return None
    return (
        f"too large: {width}x{height} pixels ({width * height / 1e6:.1f} MP) is above "
        f"the limit of {limit / 1e6:.1f} MP ({MAX_PIXELS_ENV})"
    )
