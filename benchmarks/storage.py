"""Usage: `python benchmarks/storage.py --seconds 5`

What the stored image size costs every epoch.

The builder stores frames squashed to 224x224 (issue 2: "decide and measure
at what size images are stored"). This benchmark decodes, in a tf.data
pipeline on all cores, the same frames stored three ways and resizes each to
the model input:

- `full`: the 1536x662 JPEG as downloaded, decoded at full scale;
- `full-dct2`: the same bytes decoded at 1/2 scale by libjpeg (`ratio=2`),
  the cheapest way to use full-size files;
- `stored`: a 224x224 JPEG, what the `top20`/`all` configs store.

The one-off price of `stored` is the build (see `benchmarks/scaling.py`).
"""

import io
import sys

import common
import numpy as np
from fake_kaggle import FRAME_SIZE, fake_frame
from PIL import Image

from keras_geo.bench.timing import rates, timed_loop

VARIANTS = ("full", "full-dct2", "stored")
STORED_QUALITY = 95  # The builder's JPEG_QUALITY for stored frames.


def _jpeg(image, quality):
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def encoded_frames(count, *, size=FRAME_SIZE, stored_size=224, seed=0):
    """Returns (full-size JPEG bytes, squashed stored-size JPEG bytes) lists.

    Full frames at quality 90 (~135 KB, like Kaggle's), stored frames at the
    builder's quality.
    """
    full, stored = [], []
    for index in range(count):
        image = Image.fromarray(fake_frame(np.random.default_rng([seed, index]), size))
        full.append(_jpeg(image, 90))
        stored.append(_jpeg(image.resize((stored_size,) * 2, Image.BILINEAR), STORED_QUALITY))
    return full, stored


def decode_dataset(encoded, *, variant, image_size, batch_size):
    """A repeated, batched tf.data pipeline decoding `encoded` JPEG bytes."""
    import tensorflow as tf

    ratio = 2 if variant == "full-dct2" else 1

    def decode(data):
        image = tf.io.decode_jpeg(data, channels=3, ratio=ratio)
        return tf.image.resize(image, (image_size, image_size))

    ds = tf.data.Dataset.from_tensor_slices(encoded).repeat()
    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def run_decode(*, count=64, image_size=224, batch_size=32, seconds=5.0, frame_size=FRAME_SIZE):
    """Measures decode + resize throughput of each variant; returns a dict."""
    full, stored = encoded_frames(count, size=frame_size, stored_size=image_size)
    rows = []
    for variant in VARIANTS:
        encoded = stored if variant == "stored" else full
        iterator = iter(
            decode_dataset(encoded, variant=variant, image_size=image_size, batch_size=batch_size)
        )
        timing = timed_loop(
            lambda it=iterator: int(next(it).shape[0]), seconds=seconds, warmup_steps=2
        )
        rows.append(
            {
                "variant": variant,
                "mean_kb": sum(map(len, encoded)) / len(encoded) / 1024,
                **rates(timing),
            }
        )
    speedup = rows[-1]["images_per_cpu_second"] / rows[0]["images_per_cpu_second"]
    return {
        "benchmark": "decode",
        "frame_size": list(frame_size),
        "rows": rows,
        "stored_vs_full": speedup,
        "images_per_second": rows[-1]["images_per_second"],
    }


def main(argv=None):
    p = common.parser(__doc__, sizes=(224, 32))
    p.add_argument("--images", type=common.positive_int, default=64, help="distinct frames")
    p.add_argument("--frame-size", type=common.frame_size, default=(1536, 662), help="WxH")
    args = p.parse_args(argv)
    common.report(
        args,
        run_decode,
        row_line="{variant:>10}: {mean_kb:6.1f} KB/file, {images_per_second:8.1f} images/s",
        line="stored vs full, per CPU-second: {stored_vs_full:.1f}x",
        count=args.images,
    )


if __name__ == "__main__":
    sys.exit(common.run(main))
