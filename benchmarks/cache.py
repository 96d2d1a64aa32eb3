"""Usage: `python benchmarks/cache.py --images 128 --work-dir WORK/cache`

One frozen epoch from cached features vs through the backbone.

Both paths train the same compiled frozen model (`bench.train.build_for_phase`)
on the same N stored-size images (uint8, in memory, so no file I/O counts):

- backbone: `model.fit` over `pipeline.train_dataset` (augmentation + the
  ResNet50 forward pass per image per epoch: the paper's frozen phase);
- cached: `keras_geo.features.fit_head_on_features` with the features already
  in the cache directory (the default frozen phase of `keras-geo train`).

Epochs are timed by a callback (fit's set-up and the first, tracing epoch
excluded); the one-off feature extraction is timed separately.
"""

import sys
import tempfile
import time

import common

from keras_geo.bench.timing import epoch_timer
from keras_geo.bench.train import build_for_phase


def _images(count, image_size, num_classes, seed):
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, image_size, image_size, 3), dtype=np.uint8)
    labels = rng.integers(0, num_classes, (count,), dtype=np.int64)
    return tf.data.Dataset.from_tensor_slices((images, labels))


def backbone_epoch_seconds(model, ds, *, image_size, batch_size, epochs=2):
    """Seconds of the fastest frozen epoch after the first, through the backbone."""
    from keras_geo import pipeline

    train = pipeline.train_dataset(ds, image_size=image_size, batch_size=batch_size, seed=0)
    timer = epoch_timer()
    model.fit(train, epochs=epochs, callbacks=[timer], verbose=0, shuffle=False)
    return min(timer.seconds[1:])


def cached_epoch_seconds(model, ds, *, batch_size, cache_dir, dataset_key, epochs=4):
    """Seconds of the fastest cached-feature epoch after the first."""
    from keras_geo import features

    timer = epoch_timer()
    features.fit_head_on_features(
        model,
        ds,
        None,
        epochs=epochs,
        batch_size=batch_size,
        callbacks=[timer],
        cache_dir=cache_dir,
        dataset_key=dataset_key,
        verbose=0,
    )
    return min(timer.seconds[1:])


def run_cache(*, images=256, image_size=224, batch_size=32, work_dir=None, num_classes=20, seed=0):
    """Measures both frozen epochs and the one-off extraction; returns a dict."""
    from keras_geo import features

    model = build_for_phase("frozen", num_classes=num_classes, image_size=image_size)
    ds = _images(images, image_size, num_classes, seed)
    key = f"bench-{images}-{seed}-{time.time()}"  # Always a fresh extraction.
    with tempfile.TemporaryDirectory() as scratch:
        cache_dir = work_dir or scratch
        start = time.perf_counter()
        features.cached_features(
            model,
            ds,
            batch_size=batch_size,
            cache_dir=cache_dir,
            dataset_key=key,
            split="train",
            verbose=0,
        )
        extract_s = time.perf_counter() - start
        cached_s = cached_epoch_seconds(
            model, ds, batch_size=batch_size, cache_dir=cache_dir, dataset_key=key
        )
    backbone_s = backbone_epoch_seconds(model, ds, image_size=image_size, batch_size=batch_size)
    return {
        "benchmark": "cache",
        "images": images,
        "image_size": image_size,
        "batch_size": batch_size,
        "extract_s": extract_s,
        "cached_epoch_s": cached_s,
        "backbone_epoch_s": backbone_s,
        "speedup": backbone_s / cached_s,
        "images_per_second": images / cached_s,
    }


def main(argv=None):
    p = common.parser(__doc__, seconds=False, sizes=(224, 32))
    p.add_argument("--images", type=common.positive_int, default=256, help="images in the epoch")
    p.add_argument("--work-dir", help="where the feature cache goes (default: a temp dir)")
    common.report(
        p.parse_args(argv),
        run_cache,
        line="frozen epoch of {images} images: backbone {backbone_epoch_s:.2f} s, cached "
        "features {cached_epoch_s:.3f} s ({speedup:.0f}x); one-off feature extraction "
        "{extract_s:.2f} s",
    )


if __name__ == "__main__":
    sys.exit(common.run(main))
