"""Writes `dummy_data/` for the builder test: tiny JPEGs in the Kaggle layout.

    python -m tfds_geoguessr.geoguessr.make_dummy_data

Layout: `dummy_data/compressed_dataset/<Country>/canvas_<timestamp>.jpg`,
4 images for each top-20 country (split 2 / 1 / 1) and 1 for Netherlands
(not in top20: excluded). Deterministic (fixed seed).
"""

import io
import pathlib

import numpy as np
from PIL import Image

from tfds_geoguessr.geoguessr.geoguessr_dataset_builder import read_labels

PER_COUNTRY = 4
SIZE = 16


def write_images(folder: pathlib.Path, count: int, rng, size=SIZE, start=1660000000):
    """Writes `count` random `size` x `size` JPEGs named like Kaggle's."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=75)
        (folder / f"canvas_{start + i}.jpg").write_bytes(buffer.getvalue())


def write_kaggle_folder(root, counts: dict, size=SIZE, seed=0) -> pathlib.Path:
    """Writes `root/<Country>/canvas_*.jpg`, `counts[country]` images each.

    Returns:
        `root`, as a `pathlib.Path`.
    """
    root = pathlib.Path(root)
    rng = np.random.default_rng(seed)
    for country, count in counts.items():
        write_images(root / country, count, rng, size=size)
    return root


def main():
    root = pathlib.Path(__file__).parent / "dummy_data" / "compressed_dataset"
    rng = np.random.default_rng(0)
    for country in read_labels("labels_top20.txt"):
        write_images(root / country, PER_COUNTRY, rng)
    write_images(root / "Netherlands", 1, rng)


if __name__ == "__main__":
    main()
