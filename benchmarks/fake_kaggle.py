"""Usage: `python benchmarks/fake_kaggle.py --out WORK/kaggle-20 --per-country 20`

A fake Kaggle-layout folder of full-size JPEG frames, for benchmarks.

The real frames are 1536x662 JPEGs of about 135 KB. Flat synthetic images
compress to a few KB and decode faster than real ones, which would flatter
every decode benchmark; these frames are smooth colour gradients (sky, ground)
plus blurred blobs and pixel noise, tuned so that a frame weighs about as much
as a real one (~100-150 KB at quality 90).

Example:
    >>> root = make_fake_kaggle("/tmp/fake", images_per_country=5)
    >>> sorted(p.name for p in (root / "Japan").iterdir())[:1]
    ['canvas_1600800000.jpg']
"""

import argparse
import os
import pathlib
import sys

import common
import numpy as np
from PIL import Image

from tfds_geoguessr.geoguessr.geoguessr_dataset_builder import read_labels

# The paper's 20 classes (the 20 largest Kaggle folders), alphabetical.
TOP20 = tuple(read_labels("labels_top20.txt"))
FRAME_SIZE = (1536, 662)  # (width, height) of a Kaggle frame.


def fake_frame(rng, size=FRAME_SIZE):
    """Returns one RGB uint8 frame [height, width, 3] that compresses like a photo.

    Args:
        rng: a `numpy.random.Generator`.
        size: (width, height) in pixels.
    """
    width, height = size
    top, bottom = rng.uniform(40, 230, size=(2, 3))
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    frame = top + (bottom - top) * ramp + np.zeros((1, width, 1), np.float32)
    coarse = rng.normal(0, 40, size=(max(2, height // 24), max(2, width // 24), 3))
    blobs = Image.fromarray(np.clip(coarse + 128, 0, 255).astype(np.uint8))
    blobs = np.asarray(blobs.resize((width, height), Image.BICUBIC), np.float32)
    noise = rng.standard_normal(size=(height, width, 3), dtype=np.float32)
    frame += blobs - 128 + 1.5 * noise
    return np.clip(frame, 0, 255).astype(np.uint8)


def make_fake_kaggle(
    root,
    *,
    images_per_country=10,
    countries=TOP20,
    size=FRAME_SIZE,
    seed=0,
    quality=90,
    link_from=None,
):
    """Writes `root/compressed_dataset/<Country>/canvas_<n>.jpg` frames.

    Existing files are kept, so a second call with the same arguments is
    cheap. Every folder gets the same count, so the total scales exactly.

    Args:
        root: output folder (created).
        images_per_country: images in each folder.
        countries: folder names.
        size: (width, height) of every frame.
        seed: fixes every pixel.
        quality: JPEG quality.
        link_from: another `compressed_dataset` folder made with the same
            size, seed and quality: its frames are hard-linked, not redrawn.

    Returns:
        The `compressed_dataset` folder (a `pathlib.Path`).
    """
    if images_per_country < 1:
        raise ValueError(
            f"`images_per_country` must be >= 1. Received: images_per_country={images_per_country}"
        )
    base = pathlib.Path(root) / "compressed_dataset"
    for index, country in enumerate(countries):
        folder = base / country
        folder.mkdir(parents=True, exist_ok=True)
        for number in range(images_per_country):
            # Per-country stamps: a smaller folder is a subset of a larger one.
            stamp = 1_600_000_000 + 100_000 * index + number
            path = folder / f"canvas_{stamp}.jpg"
            if path.exists():
                continue
            twin = link_from and pathlib.Path(link_from) / country / path.name
            if twin and twin.exists():
                os.link(twin, path)
                continue
            rng = np.random.default_rng([seed, stamp])
            Image.fromarray(fake_frame(rng, size)).save(path, quality=quality)
    return base


def image_count(root):
    """Number of `.jpg` files under `root` (recursively)."""
    return sum(1 for _ in pathlib.Path(root).rglob("*.jpg"))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--per-country", type=common.positive_int, default=20)
    p.add_argument("--frame-size", type=common.frame_size, default=(1536, 662), help="WxH")
    args = p.parse_args(argv)
    root = make_fake_kaggle(args.out, images_per_country=args.per_country, size=args.frame_size)
    print(f"{image_count(root)} frames of {args.frame_size[0]}x{args.frame_size[1]} in {root}")


if __name__ == "__main__":
    sys.exit(common.run(main))
