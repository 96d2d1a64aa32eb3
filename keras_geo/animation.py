"""The first frame of an animated GIF, cut out in TensorFlow ops before decoding.

`tf.io.decode_image(..., expand_animations=False)` returns the first frame of
a GIF, but its GIF decoder (giflib's `DGifSlurp`) first decodes every frame:
a 2 MB GIF of 500 frames of 2000x2000 takes 2 GB. `first_gif_frame` walks the
GIF's block structure (header, colour table, extensions, the first image's
data sub-blocks) and returns the bytes up to the end of the first image plus
the trailer, a valid one-frame GIF that decodes to the same first frame, so
decoding costs one frame whatever the file holds. It runs in the graph (the
exported SavedModel needs nothing else) and costs one loop step per data
sub-block of the first frame (255 bytes each; about 0.1 s for a 1 MB frame).
Other formats pass unchanged: TensorFlow decodes one frame of a PNG (APNG
frames are ignored) and refuses animated WebP with 3 channels.
"""

import tensorflow as tf

_EXTENSION = 0x21  # "!": an extension block, then data sub-blocks.
_IMAGE = 0x2C  # ",": an image descriptor, then the image's data sub-blocks.
_TRAILER = b";"


def first_gif_frame(image_bytes):
    """Cuts a GIF after its first image; other bytes pass unchanged.

    Args:
        image_bytes: scalar `tf.string`, any encoded image.

    Returns:
        `(image_bytes, frame_pixels)`: the bytes (a GIF cut after its first
        image; anything else, or a GIF whose structure is not what it should
        be, unchanged) and the width x height the first image's descriptor
        declares (int64; 0 if none), which may exceed the GIF's screen size.

    Example: a GIF of 3 frames of 400x300 gives the bytes of a GIF of its first
    frame and 120000.
    """
    is_gif = tf.equal(tf.strings.substr(image_bytes, 0, 4), b"GIF8")
    return tf.cond(
        is_gif,
        lambda: _cut(image_bytes),
        lambda: (image_bytes, tf.constant(0, tf.int64)),
    )


def _cut(image_bytes):
    data = tf.cast(tf.io.decode_raw(image_bytes, tf.uint8), tf.int64)
    size = tf.size(data, out_type=tf.int64)

    def byte(i):  # -1 past the end.
        i = tf.cast(i, tf.int64)
        inside = tf.logical_and(i >= 0, i < size)
        value = tf.gather(data, tf.clip_by_value(i, tf.constant(0, tf.int64), size - 1))
        return tf.where(inside, value, tf.constant(-1, tf.int64))

    def table_bytes(packed):  # A colour table's size from its packed field.
        return tf.where(packed >= 128, 3 * 2 ** (packed % 8 + 1), tf.constant(0, tf.int64))

    # State: position, inside data sub-blocks, first image seen, stop, its pixels.
    def body(pos, in_blocks, seen, stop, pixels):
        b = byte(pos)

        def next_sub_block():
            last = tf.equal(b, 0)  # A zero length ends the sub-blocks.
            return (
                tf.where(last, pos + 1, pos + b + 1),
                tf.logical_not(last),
                seen,
                tf.logical_and(last, seen),
                pixels,
            )

        def next_block():
            extension, image = tf.equal(b, _EXTENSION), tf.equal(b, _IMAGE)
            width = byte(pos + 5) + 256 * byte(pos + 6)
            height = byte(pos + 7) + 256 * byte(pos + 8)
            # An image: a 10-byte descriptor, a local colour table, the LZW code size.
            after_image = pos + 11 + table_bytes(byte(pos + 9))
            return (
                tf.where(extension, pos + 2, tf.where(image, after_image, pos)),
                tf.logical_or(extension, image),
                tf.logical_or(seen, image),
                tf.logical_not(tf.logical_or(extension, image)),  # The trailer or junk.
                tf.where(image, width * height, pixels),
            )

        return tf.cond(in_blocks, next_sub_block, next_block)

    start = 13 + table_bytes(byte(10))  # The header and the global colour table.
    zero = tf.constant(0, tf.int64)
    pos, _, seen, stop, pixels = tf.while_loop(
        lambda pos, in_blocks, seen, stop, pixels: tf.logical_and(tf.logical_not(stop), pos < size),
        body,
        (start, tf.constant(False), tf.constant(False), tf.constant(False), zero),
    )
    cut = tf.logical_and(seen, stop)
    first = tf.strings.substr(image_bytes, zero, pos) + _TRAILER
    return tf.where(cut, first, image_bytes), tf.where(seen, pixels, zero)
