"""Usage: `python benchmarks/baseline.py --manual-dir WORK/kaggle-20 --seconds 15`

The paper's input pipeline, re-expressed without torch: the baseline.

What the authors ran is torchvision `ImageFolder` + `DataLoader` with one
worker process per core. Per image and per epoch, a worker:

1. opens the JPEG with PIL and converts it to RGB;
2. squashes it to 224x224 (the authors squashed every frame to 224 first);
3. `RandomResizedCrop(224)` (scale 0.08-1, ratio 3/4-4/3, bilinear);
4. `RandomHorizontalFlip()`; `RandomRotation(5)` (nearest, black corners);
5. `ToTensor()` + `Normalize(ImageNet mean, std)`: float32 CHW.

Here a `multiprocessing.Pool` maps indices to float32 CHW arrays (steps 1-5
in numpy/PIL) and the parent stacks them into batches, as DataLoader's
collate does. No torch is needed, so the baseline runs anywhere.
"""

import collections
import math
import multiprocessing
import os
import pathlib
import sys

import common
import numpy as np
from PIL import Image

from keras_geo.bench.timing import cpu_seconds, rates, timed_loop
from keras_geo.errors import UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)

_FILES = None  # Set in each worker by `_init_worker`.
_SEED = 0
_SIZE = 224


def image_folder(manual_dir):
    """Lists `(path, label)` pairs as torchvision's `ImageFolder` does.

    Accepts the folder holding `compressed_dataset/` or the country folders
    themselves. Classes are the sorted sub-folder names.

    Raises:
        UserError: when no image is found.
    """
    root = pathlib.Path(manual_dir)
    if (root / "compressed_dataset").is_dir():
        root = root / "compressed_dataset"
    classes = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    samples = []
    for label, name in enumerate(classes):
        for path in sorted((root / name).rglob("*")):
            if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
                samples.append((str(path), label))
    if not samples:
        raise UserError(
            f"No images found in {manual_dir!r}: pass the Kaggle folder "
            "(holding compressed_dataset/<Country>/*.jpg) as --manual-dir, or "
            "make one with `python benchmarks/fake_kaggle.py --out DIR`."
        )
    return samples


def random_resized_crop_box(rng, width, height, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """torchvision's `RandomResizedCrop.get_params`: returns (left, top, w, h)."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1)), w, h
    w, h = width, height  # Fallback: the whole image (ratio within bounds here).
    return 0, 0, w, h


def paper_transform(path, rng, size=224):
    """Steps 1-5 of the module docstring for one file: float32 [3, size, size]."""
    with Image.open(path) as image:
        image = image.convert("RGB")
    image = image.resize((size, size), Image.BILINEAR)
    left, top, w, h = random_resized_crop_box(rng, size, size)
    image = image.resize((size, size), Image.BILINEAR, box=(left, top, left + w, top + h))
    if rng.random() < 0.5:
        image = image.transpose(Image.FLIP_LEFT_RIGHT)
    image = image.rotate(rng.uniform(-5.0, 5.0), resample=Image.NEAREST, fillcolor=0)
    array = np.asarray(image, np.float32) / 255.0
    array = (array - MEAN) / STD
    return np.ascontiguousarray(array.transpose(2, 0, 1))


def _init_worker(files, seed, size):
    global _FILES, _SEED, _SIZE
    _FILES, _SEED, _SIZE = files, seed, size


def _load_batch(indices):
    """Worker task: one batch of indices -> list of (CHW float32 array, label)."""
    items = []
    for index in indices:
        rng = np.random.default_rng([_SEED, index])
        path, label = _FILES[index % len(_FILES)]
        items.append((paper_transform(path, rng, _SIZE), label))
    return items


def _batches_of_indices(count, batch_size, seed):
    """Endless batches of shuffled indices, a new permutation per epoch."""
    rng = np.random.default_rng(seed)
    epoch, batch = 0, []
    while True:
        for index in rng.permutation(count):
            batch.append(int(index) + epoch * count)
            if len(batch) == batch_size:
                yield batch
                batch = []
        epoch += 1


def _start_method():
    # DataLoader forks on Linux; forking a process that loaded TensorFlow can
    # deadlock, so such a process (e.g. a test session) spawns instead.
    if "tensorflow" in sys.modules or sys.platform != "linux":
        return "spawn"
    return "fork"


def run_baseline(manual_dir, *, seconds=15.0, workers=None, batch_size=64, size=224, seed=0):
    """Measures the paper's input pipeline; returns a dict with `images_per_second`.

    As DataLoader does, each worker builds whole batches and at most
    2 batches per worker are in flight (`prefetch_factor=2`).

    Args:
        manual_dir: a folder in the Kaggle layout.
        seconds: timed duration (after one warm-up batch).
        workers: worker processes; None: one per core.
        batch_size: images per batch.
        size: the square size (224 in the paper).
        seed: fixes crops, flips and angles.
    """
    samples = image_folder(manual_dir)
    workers = workers or os.cpu_count() or 1
    context = multiprocessing.get_context(_start_method())
    tasks = _batches_of_indices(len(samples), batch_size, seed)
    with context.Pool(workers, initializer=_init_worker, initargs=(samples, seed, size)) as pool:
        in_flight = collections.deque(
            pool.apply_async(_load_batch, (next(tasks),)) for _ in range(2 * workers)
        )

        def next_batch():
            items = in_flight.popleft().get()
            in_flight.append(pool.apply_async(_load_batch, (next(tasks),)))
            images = np.stack([image for image, _ in items])
            labels = np.array([label for _, label in items], np.int64)
            assert images.shape[0] == labels.shape[0]
            return len(labels)

        timing = timed_loop(
            next_batch,
            seconds=seconds,
            warmup_steps=1,
            cpu_clock=lambda: cpu_seconds(include_children=True),
        )
        pool.terminate()
    return {
        "benchmark": "baseline",
        "files": len(samples),
        "workers": workers,
        "batch_size": batch_size,
        **rates(timing),
    }


def main(argv=None):
    p = common.parser(__doc__, sizes=(224, 64))
    p.add_argument("--manual-dir", required=True, help="folder in the Kaggle layout")
    p.add_argument("--workers", type=common.positive_int, help="worker processes (default: cores)")
    args = p.parse_args(argv)
    common.report(
        args,
        run_baseline,
        line="{images} images in {seconds:.1f} s, {workers} workers, {files} files, "
        "{images_per_cpu_second:.1f} images per CPU-second",
        size=args.image_size,
    )


if __name__ == "__main__":
    sys.exit(common.run(main))
