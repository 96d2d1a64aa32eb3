"""The memory budget of one input image, shared by every reader and decoder of keras-geo.

A small file can hold a huge image (a 12000x12000 PNG of 0.4 MB decodes to
432 MB of RGB and far more during resizing), a device or a pipe can hold
endless bytes, a zip member can claim one size and hold another. So every
path from a file to pixels (the dataset builder, `keras-geo predict`, the
app's page and JSON API, the exported SavedModel) holds each input to one
budget, checked before the work it bounds:

- **pixels**: `max_pixels()` (`KERAS_GEO_MAX_PIXELS`, default 50 MP) from the
  header, before decoding. Only the first frame of an animation (GIF, APNG,
  animated WebP) is ever decoded, so frames do not multiply it; a GIF whose
  first frame is larger than its screen counts the larger.
- **bytes**: `max_file_bytes()`, 4 bytes per pixel of the budget plus 1 MiB
  (201 MB at the default): no 8-bit RGBA image within the pixel budget needs
  more, even uncompressed. A file, a zip member (its declared size, then
  what it really holds) or a pipe is read up to that many bytes and refused
  past it; devices and sockets are refused unread, a FIFO with no writer at
  once.

`keras_geo` imports this module; it imports nothing of `keras_geo`, nor
TensorFlow (the build's worker processes use it).
"""

import errno
import os
import stat

MAX_PIXELS = 50_000_000  # Default limit: 50 megapixels (a Kaggle frame is 1 MP).
MAX_PIXELS_ENV = "KERAS_GEO_MAX_PIXELS"  # Overrides MAX_PIXELS when set.
# The highest `KERAS_GEO_MAX_PIXELS` accepted: one gigapixel decodes to 3 GB
# of RGB (and several times that while resizing); beyond is a typo.
MAX_PIXELS_CEILING = 1_000_000_000
BYTES_PER_PIXEL = 4  # File bytes allowed per pixel of the budget (8-bit RGBA).
FILE_SLACK_BYTES = 2**20  # Headers, colour profiles, EXIF.
_CHUNK = 2**20


class TooLarge(ValueError):
    """An input above the budget; the message is one line saying which limit."""


def max_pixels() -> int:
    """The pixel limit: `$KERAS_GEO_MAX_PIXELS` if set, else `MAX_PIXELS`.

    Raises:
        ValueError: the variable is set but is not an integer from 1 to
            `MAX_PIXELS_CEILING`.
    """
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return MAX_PIXELS
    if not text.isdigit() or not 1 <= int(text) <= MAX_PIXELS_CEILING:
        raise ValueError(
            f"{MAX_PIXELS_ENV} must be a positive integer of at most {MAX_PIXELS_CEILING} "
            f"(1 gigapixel). Received: {text[:40]!r}"
        )
    return int(text)


def max_file_bytes(pixels: int | None = None) -> int:
    """The byte limit of one encoded image: 4 bytes per pixel of the budget + 1 MiB.

    Example: `max_file_bytes(50_000_000)` is 201,048,576 (about 201 MB).

    Args:
        pixels: the pixel budget; None: `max_pixels()`.
    """
    pixels = max_pixels() if pixels is None else pixels
    return BYTES_PER_PIXEL * pixels + FILE_SLACK_BYTES


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


def too_many_bytes(size: int | None, limit: int) -> TooLarge:
    """The `TooLarge` of a file of `size` bytes (None: more than `limit`, size unknown)."""
    what = f"{size / 1e6:.1f} MB" if size is not None else f"more than {limit / 1e6:.1f} MB"
    return TooLarge(
        f"too large: the file holds {what}, above the limit of {limit / 1e6:.1f} MB "
        f"(4 bytes per pixel of {MAX_PIXELS_ENV})"
    )


def read_stream(stream, limit: int, *, declared: int | None = None) -> bytes:
    """Reads a binary stream to its end, but never more than `limit` + 1 bytes.

    Args:
        stream: an open binary file object (a file, a pipe, a zip member).
        limit: the byte budget.
        declared: the size the source claims (a zip member's, a file's
            `stat`); above `limit` it is refused before reading a byte.

    Raises:
        TooLarge: `declared` or the bytes actually there exceed `limit`.
    """
    if declared is not None and declared > limit:
        raise too_many_bytes(declared, limit)
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise too_many_bytes(None, limit)
    return data


def read_file(path, limit: int | None = None) -> bytes:
    """The bytes of a local file, read within the budget.

    A regular file larger than `limit` is refused from its size, unread. A
    pipe (a FIFO, `/dev/stdin` fed by a pipe) is read until its writer closes
    it, up to `limit`; a FIFO that no process writes to is refused at once
    instead of waiting for ever. Devices and sockets are refused unread.

    Args:
        path: the file.
        limit: the byte budget; None: `max_file_bytes()`.

    Raises:
        TooLarge: above `limit`.
        ValueError: not a regular file or pipe, or a FIFO with no writer
            (one-line message).
        OSError: it cannot be opened or read (missing, a folder, no permission).
    """
    limit = max_file_bytes() if limit is None else limit
    # O_NONBLOCK: opening a FIFO with no writer would block for ever.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb", buffering=0) as f:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if stat.S_ISREG(mode):
            os.set_blocking(fd, True)
            return _read_all(f, limit, declared=os.fstat(fd).st_size)
        if not stat.S_ISFIFO(mode):
            raise ValueError(f"not a regular file ({_kind(mode)}): pass an image file")
        try:
            first = os.read(fd, _CHUNK)
        except BlockingIOError:  # A writer is there, its data not yet.
            first = None
        if first == b"":
            raise ValueError("a FIFO (named pipe) with no writer: nothing to read")
        os.set_blocking(fd, True)
        return _read_all(f, limit, first=first or b"")


def _read_all(f, limit, *, declared=None, first=b""):
    if declared is not None and declared > limit:
        raise too_many_bytes(declared, limit)
    chunks, total = [first], len(first)
    while total <= limit:
        chunk = f.read(min(_CHUNK, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
    raise too_many_bytes(None, limit)


def _kind(mode):
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"
