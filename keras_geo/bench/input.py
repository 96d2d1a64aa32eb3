"""`keras-geo bench input`: throughput of the training input pipeline.

Reads the built TFDS dataset with `keras_geo.datasets.load_split` and feeds
it through `keras_geo.pipeline.train_dataset` (decode, augmentation,
batching, prefetch), exactly what `keras-geo train` iterates. The epoch
boundary (shuffle buffer refill) is part of the measurement, as in training.
"""

from keras_geo import datasets, pipeline
from keras_geo.bench.timing import rates, timed_loop


def run_input(
    dataset="geoguessr/top20",
    *,
    data_dir=None,
    split="train",
    batch_size=64,
    image_size=224,
    seconds=15.0,
    flip=True,
    warmup_steps=3,
):
    """Measures the training input pipeline; returns a dict with `images_per_second`.

    Args:
        dataset: `geoguessr/<config>`.
        data_dir: TFDS data dir (None: TFDS' default).
        split: split to read.
        batch_size: images per batch.
        image_size: square output size of the augmentation.
        seconds: timed duration, after `warmup_steps` untimed batches.
        flip: random horizontal flips (the paper's default).
        warmup_steps: untimed batches (fill the shuffle buffer, trace graphs).
    """
    split_ds = datasets.load_split(dataset, split, data_dir=data_dir)
    batches = pipeline.train_dataset(
        split_ds, image_size=image_size, batch_size=batch_size, flip=flip, seed=0
    ).repeat()
    iterator = iter(batches)

    def next_batch():
        images, _ = next(iterator)
        return int(images.shape[0])

    timing = timed_loop(next_batch, seconds=seconds, warmup_steps=warmup_steps)
    return {
        "benchmark": "input",
        "dataset": dataset,
        "split": split,
        "batch_size": batch_size,
        "image_size": image_size,
        **rates(timing),
    }
