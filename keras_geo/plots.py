"""The paper's figures as PNG files (Agg backend, nothing is shown).

- `training_curves`: accuracy and loss per epoch, train and validation, one
  column per phase (the paper's Figure 4: feature extraction | fine tuning);
  loss on a log scale when it spans more than 20x (`loss_scale`).
- `confusion_matrix`: rows (true country) normalised to 1, country names on
  both axes, true on y, predicted on x (the paper's Figure 5).
- `per_country_accuracy`: recall of each country, with its support.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from keras_geo import paths  # noqa: E402


def _save(fig, path):
    """Writes `fig` to `path` atomically and closes it."""
    try:
        with paths.atomic_write(path) as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        plt.close(fig)


_PHASE_TITLES = {"frozen": "Feature extraction", "finetune": "Fine tuning"}


def training_curves(histories, path):
    """Plots accuracy (top row) and loss (bottom row) per epoch for each phase.

    Args:
        histories: `{phase: [row, ...]}` with rows as read by
            `keras_geo.runs.read_history` (keys `epoch`, `accuracy`, `loss`,
            `val_accuracy`, `val_loss`); phases without rows are skipped.
        path: the PNG to write.

    Returns:
        `path`, or None when no phase has any epoch.
    """
    phases = [phase for phase, rows in histories.items() if rows]
    if not phases:
        return None
    fig, axes = plt.subplots(2, len(phases), figsize=(5 * len(phases), 7), squeeze=False)
    for column, phase in enumerate(phases):
        rows = histories[phase]
        epochs = [int(row["epoch"]) + 1 for row in rows]
        for row_index, metric in enumerate(("accuracy", "loss")):
            ax = axes[row_index][column]
            keys = (metric, f"val_{metric}")
            for key, label in zip(keys, ("train", "validation"), strict=True):
                values = [row.get(key, np.nan) for row in rows]
                ax.plot(epochs, values, marker="o", label=label)
            if metric == "loss":
                ax.set_yscale(loss_scale([row.get(k, np.nan) for row in rows for k in keys]))
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel(metric)
            ax.set_title(f"{_PHASE_TITLES.get(phase, phase)}: {metric}")
            ax.grid(alpha=0.3)
            ax.legend()
    fig.tight_layout()
    _save(fig, path)
    return path


def loss_scale(values, spread=20.0):
    """ "log" when positive losses span more than `spread` times, else "linear".

    A first epoch far above the rest (a random network's BatchNorm settling)
    would otherwise flatten every later epoch against the axis.

    Example:
        >>> loss_scale([78.0, 4.4, 1.2]), loss_scale([3.0, 2.5, np.nan])
        ('log', 'linear')
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0 or values.min() <= 0:
        return "linear"
    return "log" if values.max() / values.min() > spread else "linear"


def confusion_matrix(matrix, class_names, path, title="Confusion matrix"):
    """Plots a row-normalised confusion matrix (true on y, predicted on x).

    Args:
        matrix: `[C, C]` counts, `matrix[true, predicted]`.
        class_names: the C country names, in label order.
        path: the PNG to write.
        title: figure title.

    Returns:
        `path`.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    totals = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    size = max(6.0, 0.45 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(normalised, cmap="Blues", vmin=0.0, vmax=1.0)
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=90, fontsize=8)
    ax.set_yticks(ticks, class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if len(class_names) <= 30:
        for i, j in zip(*np.nonzero(normalised >= 0.01), strict=True):
            color = "white" if normalised[i, j] > 0.5 else "black"
            ax.text(
                j,
                i,
                f"{normalised[i, j]:.2f}",
                ha="center",
                va="center",
                fontsize=6,
                color=color,
            )
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of true row")
    fig.tight_layout()
    _save(fig, path)
    return path


def per_country_accuracy(recall, support, class_names, path, title="Per-country accuracy"):
    """Plots each country's accuracy (recall), best first, with its support.

    Returns:
        `path`.
    """
    order = np.argsort(-np.asarray(recall, dtype=np.float64), kind="stable")
    fig, ax = plt.subplots(figsize=(7, max(4.0, 0.3 * len(class_names) + 1)))
    positions = np.arange(len(order))
    ax.barh(positions, [recall[i] for i in order], color="tab:blue")
    ax.set_yticks(positions, [f"{class_names[i]} (n={support[i]})" for i in order], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy (recall)")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
    return path
