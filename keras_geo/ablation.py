"""Ablations: train a list of experiment variants side by side and compare them.

Each variant is `EXPERIMENT[:field=value,field=value...]`, e.g.
`finetune_haversine:flip=false` or `finetune_haversine:backbone=efficientnetv2s`:
an experiment of `keras_geo.experiments` with `TrainConfig` overrides. Every
variant trains into its own sibling run directory `OUT/<variant slug>/`
(`keras_geo.training.train`: a rerun resumes or skips finished runs), then
`OUT/comparison.csv`, `OUT/comparison.md` and `OUT/comparison.png` compare
their metrics on the VALIDATION split by default: accuracy, balanced accuracy,
top-5, median km and the GeoGuessr score. Choose a recipe there; the test
split (`split="test"`) is for reporting the one chosen, never for choosing.
"""

import csv
import dataclasses
import json
import pathlib
import re

import matplotlib.pyplot as plt
import numpy as np

from keras_geo import (
    evaluation,
    experiments,
    paths,
    plots,  # noqa: F401 (selects the Agg backend)
    runs,
    training,
)
from keras_geo.errors import UserError, one_line

SPLITS = ("validation", "test")
COLUMNS = (
    "variant",
    "split",
    "accuracy",
    "balanced_accuracy",
    "top5_accuracy",
    "median_km",
    "geoguessr_score",
    "model_phase",
    "run_dir",
)
_PERCENT = ("accuracy", "balanced_accuracy", "top5_accuracy")


@dataclasses.dataclass(frozen=True)
class Variant:
    """One entry of an ablation: its label, run directory name and config."""

    label: str
    slug: str
    config: object  # keras_geo.config.TrainConfig


def parse_variant(text, common=None):
    """Parses `EXPERIMENT[:field=value,...]` into a `Variant`.

    Args:
        text: The variant, e.g. "finetune_haversine:flip=false,alpha=0".
        common: `TrainConfig` field overrides applied first (e.g. the
            epochs of a smoke run); the variant's own win.

    Example: "demo:backbone=vgg16" -> slug "demo-backbone=vgg16".

    Raises:
        UserError: unknown experiment, field or value.
    """
    name, _, rest = text.partition(":")
    overrides = {}
    for item in filter(None, rest.split(",")):
        field, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"variant {text!r}: expected field=value, got {item!r}")
        overrides[field.strip().replace("-", "_")] = value.strip()
    try:
        config = experiments.get(name.strip()).replace(**(common or {}))
        config = config.replace(**{k: parse_value(config, k, v) for k, v in overrides.items()})
    except (TypeError, ValueError) as error:
        raise UserError(f"variant {text!r}: {one_line(error)}") from None
    slug = re.sub(r"[^A-Za-z0-9_.=+-]+", "-", text.replace(":", "-").replace(",", "-"))
    return Variant(label=text, slug=slug, config=config)


def parse_value(config, field, text):
    """Converts `text` to the type of `config.<field>` ("none" -> None).

    Raises:
        UserError: unknown field, or a value of the wrong type.
    """
    if field not in {f.name for f in dataclasses.fields(config)}:
        try:
            config.replace(**{field: None})  # Raises the unknown-field error.
        except ValueError as error:
            raise UserError(one_line(error)) from None
    default = getattr(config, field)
    lowered = text.lower()
    if lowered in ("none", "null") and field not in ("weights", "class_weight"):
        return None
    try:
        if isinstance(default, bool):
            if lowered not in ("true", "false"):
                raise ValueError
            return lowered == "true"
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float) or field in ("tau_km", "finetune_learning_rate"):
            return float(text)
    except ValueError:
        kind = "true or false" if isinstance(default, bool) else type(default).__name__
        raise UserError(f"`{field}` expects {kind}. Received: {field}={text!r}") from None
    return text


def run(variants, out_dir, *, runtime=None, split="validation", verbose="auto", train_kwargs=None):
    """Trains every variant into `out_dir/<slug>/` and writes the comparison.

    Args:
        variants: `Variant`s (from `parse_variant`), run in order.
        out_dir: Parent of the run directories and the comparison files.
        runtime: The `keras_geo.config.Runtime` every variant runs with (e.g.
            its data dir); None: the default.
        split: The split compared: "validation" (choose by it) or "test".
        verbose: Passed to `keras_geo.training.train`.
        train_kwargs: More keyword arguments for `train` (tests: `steps_per_epoch`).

    Returns:
        The comparison rows (dicts with `COLUMNS`).
    """
    if split not in SPLITS:
        raise UserError(f"`split` must be one of {', '.join(SPLITS)}. Received: split={split!r}")
    out_dir = pathlib.Path(out_dir)
    slugs = [variant.slug for variant in variants]
    if len(set(slugs)) != len(slugs):
        raise UserError(f"the same variant is listed twice: {sorted(slugs)}")
    for variant in variants:  # Before any training: a clash fails fast.
        runs.check_run_dir(variant.config, out_dir / variant.slug)
    rows = []
    for variant in variants:
        run_dir = out_dir / variant.slug
        if not runs.metrics_path(run_dir, "test").is_file():
            training.train(
                variant.config, run_dir, runtime=runtime, verbose=verbose, **(train_kwargs or {})
            )
        if not runs.metrics_path(run_dir, split).is_file():
            evaluation.evaluate(run_dir, split, verbose=verbose)
        rows.append(_row(variant, run_dir, split))
        write_comparison(rows, out_dir)
    return rows


def _row(variant, run_dir, split):
    with open(runs.metrics_path(run_dir, split)) as f:
        metrics = json.load(f)
    row = {name: metrics.get(name) for name in COLUMNS}
    row.update(variant=variant.label, split=split, run_dir=variant.slug)
    return row


def write_comparison(rows, out_dir):
    """Writes `comparison.csv`, `comparison.md` and the bar chart `comparison.png`."""
    out_dir = pathlib.Path(out_dir)
    with paths.atomic_write(out_dir / "comparison.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    paths.write_text(out_dir / "comparison.md", markdown_table(rows))
    _bar_chart(rows, out_dir / "comparison.png")


def markdown_table(rows):
    """Returns the comparison as a markdown table (percentages, km, points)."""
    split = rows[0]["split"] if rows else "validation"
    header = (
        f"| variant ({split}) | accuracy | balanced acc. | top-5 | median km | GeoGuessr score |"
    )
    lines = [header, "|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        cells = [f"{100 * row[name]:.1f}%" for name in _PERCENT]
        cells += [f"{row['median_km']:.0f}", f"{row['geoguessr_score']:.0f}"]
        lines.append(f"| `{row['variant']}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _bar_chart(rows, path):
    panels = (*_PERCENT, "geoguessr_score")
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 0.5 * len(rows) + 2))
    y = np.arange(len(rows))
    split = rows[0]["split"] if rows else "validation"
    for ax, name in zip(axes, panels, strict=True):
        values = [row[name] * (100 if name in _PERCENT else 1) for row in rows]
        ax.barh(y, values, color="tab:blue")
        ax.set_yticks(y, [row["variant"] for row in rows] if ax is axes[0] else [])
        ax.invert_yaxis()
        title = name.replace("_", " ") + (" (%)" if name in _PERCENT else "")
        ax.set_title(f"{title}, {split}")
        for index, value in enumerate(values):
            ax.text(
                value, index, f" {value:.1f}" if name in _PERCENT else f" {value:.0f}", va="center"
            )
    fig.tight_layout()
    with paths.atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
