"""`keras-geo data info`: per-country counts and the paper's Figures 1 and 2.

Writes into an output folder:

- `counts.csv`: one row per country, images per split and in total;
- `class_distribution.png`: train images per country, largest first
  (the paper's Figure 1);
- `samples.png`: a grid of train images titled with their country
  (the paper's Figure 2).
"""

import csv
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

from keras_geo import datasets, paths  # noqa: E402

SPLITS = ("train", "validation", "test")


def split_counts(dataset: str, data_dir=None) -> dict:
    """`{split: int array [C]}`: images per class, read without decoding images."""
    ds_builder = datasets.prepared_builder(dataset, data_dir)
    num_classes = ds_builder.info.features["label"].num_classes
    counts = {}
    for split in SPLITS:
        ds = ds_builder.as_dataset(split=split, decoders={"image": tfds.decode.SkipDecoding()})
        labels = ds.map(lambda ex: ex["label"]).batch(4096)
        counts[split] = np.zeros(num_classes, np.int64)
        for batch in labels.as_numpy_iterator():
            counts[split] += np.bincount(batch, minlength=num_classes)
    return counts


def write_counts_csv(path, class_names, counts) -> None:
    """One row per country: `country,train,validation,test,total`."""
    with paths.atomic_write(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fobj:
        writer = csv.writer(fobj)
        writer.writerow(["country", *SPLITS, "total"])
        for i, name in enumerate(class_names):
            row = [int(counts[split][i]) for split in SPLITS]
            writer.writerow([name, *row, sum(row)])


def plot_class_distribution(path, class_names, train_counts, title) -> None:
    """Bar chart of train images per country, largest first (Figure 1)."""
    order = np.argsort(-np.asarray(train_counts), kind="stable")
    fig, ax = plt.subplots(figsize=(max(6, 0.3 * len(order) + 2), 4.5))
    ax.bar([class_names[i] for i in order], np.asarray(train_counts)[order])
    ax.set_ylabel("train images")
    share = np.max(train_counts) / max(1, np.sum(train_counts))
    ax.set_title(f"{title}\n(largest class: {share:.1%} of train)")
    ax.tick_params(axis="x", labelrotation=90, labelsize=8)
    fig.tight_layout()
    _save(fig, path, dpi=120)


def sample_images(dataset, data_dir=None, count=20, max_read=5000):
    """Up to `count` train `(image, label)` pairs, at most one per country."""
    ds = datasets.load_split(dataset, "train", data_dir).take(max_read)
    samples = {}
    for image, label in ds.as_numpy_iterator():
        samples.setdefault(int(label), image)
        if len(samples) >= count:
            break
    return sorted(samples.items())


def plot_samples(path, samples, class_names, columns=5) -> None:
    """Grid of images titled with their country (Figure 2)."""
    rows = max(1, -(-len(samples) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.4 * columns, 2.6 * rows))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, (label, image) in zip(np.ravel(axes), samples, strict=False):
        ax.imshow(image)
        ax.set_title(class_names[label], fontsize=9)
    fig.tight_layout()
    _save(fig, path, dpi=100)


def _save(fig, path, dpi):
    try:
        with paths.atomic_write(path) as tmp:
            fig.savefig(tmp, dpi=dpi)
    finally:
        plt.close(fig)


def write_info(dataset: str, data_dir, out_dir) -> dict:
    """Writes counts.csv, class_distribution.png and samples.png into `out_dir`.

    Returns:
        `{"counts": path, "class_distribution": path, "samples": path,
        "split_counts": {split: [C] ints}}`.
    """
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = datasets.class_names(dataset, data_dir)
    counts = split_counts(dataset, data_dir)
    paths = {
        "counts": out / "counts.csv",
        "class_distribution": out / "class_distribution.png",
        "samples": out / "samples.png",
    }
    write_counts_csv(paths["counts"], names, counts)
    title = f"geoguessr/{datasets.config_of(dataset)}: train images per country"
    plot_class_distribution(paths["class_distribution"], names, counts["train"], title)
    plot_samples(paths["samples"], sample_images(dataset, data_dir), names)
    result = {key: str(path) for key, path in paths.items()}
    result["split_counts"] = {s: c.tolist() for s, c in counts.items()}
    return result
