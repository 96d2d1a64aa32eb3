"""Evaluation of a run on one split: metrics JSON and the paper's figures.

`evaluate(run_dir, split)` writes `RUN_DIR/metrics/<split>.json`:

- `accuracy`, `top5_accuracy`, `num_examples`, `num_classes`;
- `balanced_accuracy`: mean per-country recall (every country counts the
  same, whatever its share of the split);
- `tta`: the number of test-time views averaged (`keras_geo.tta`; 1: none);
- `model_phase`: the phase whose weights were evaluated (from `model.json`);
- `mean_km`, `median_km`: great-circle distance between the predicted and the
  true country's points (`keras_geo.countries`), 0 when right;
- `geoguessr_score`: mean of `5000 * exp(-d_km / 1492.7)` (max 5000);
- `majority_class`, `majority_class_accuracy`: always answering the split's
  most frequent country (United States, about 30.5% of top20): the baseline
  any accuracy must beat, besides `chance_accuracy` = 1 / classes;
- `per_country`: precision, recall (= the country's accuracy) and support;
- `confusion_matrix`: counts, `[true][predicted]`, in `class_names` order;

and `RUN_DIR/plots/`: `confusion_matrix_<split>.png` (rows normalised),
`per_country_accuracy_<split>.png`, `training_curves.png`.
"""

import contextlib
import pathlib

import keras
import numpy as np

from keras_geo import datasets, divergence, locks, paths, pipeline, plots, runs, side_files
from keras_geo import tta as tta_lib
from keras_geo.config import PHASES
from keras_geo.console import keras_verbose
from keras_geo.errors import UserError
from keras_geo.metrics import distance_summary, distances_km


def evaluate(
    run_dir, split="test", *, model=None, batch_size=None, verbose="auto", tta=1, write=True
):
    """Evaluates the run's model on `split`; writes metrics and figures.

    Args:
        run_dir: a run directory written by `keras_geo.training.train`.
        split: `"train"`, `"validation"` or `"test"`.
        model: the model to evaluate; default: the run's `model.keras`.
        batch_size: default: `pipeline.eval_batch_size` of the run's batch size.
        verbose: `"auto"`/1 shows a progress bar, 0 none.
        write: False computes and returns the metrics without writing
            anything (a read-only run directory).
        tta: test-time views averaged (`keras_geo.tta.VIEWS`); 1: none.

    Returns:
        The metrics dict written to `metrics/<split>.json`.
    """

    tta_lib.check_views(tta)
    run_dir = pathlib.Path(run_dir)
    writer = locks.exclusive(run_dir, "--run-dir") if write else contextlib.nullcontext()
    with writer:  # Not while another process writes the run (re-entrant within `train`).
        return _evaluate(run_dir, split, model, batch_size, verbose, tta, write)


def _evaluate(run_dir, split, model, batch_size, verbose, tta, write):
    stored = runs.stored_run_config(run_dir)
    if stored is None:
        raise UserError(f"{run_dir} has no config.json: is it a keras-geo run directory?")
    config, runtime = stored
    if model is None:  # Its side files checked against it and each other.
        model, class_names, config = runs.load_model(run_dir)
    else:
        class_names = runs.read_class_names(run_dir)
        side_files.check_against_model(
            model,
            class_names,
            config,
            names_from=run_dir / runs.CLASS_NAMES_FILE,
            config_from=run_dir / runs.CONFIG_FILE,
        )
    model = tta_lib.with_test_time_views(model, tta)
    split_ds = datasets.load_split(config.dataset, split, data_dir=runtime.data_dir)
    labels, probabilities = predict_split(
        model,
        split_ds,
        image_size=config.image_size,
        batch_size=batch_size or pipeline.eval_batch_size(config.batch_size, views=tta),
        verbose=verbose,
    )
    divergence.check_probabilities(probabilities)
    metrics = compute_metrics(labels, probabilities, class_names)
    phase = runs.read_model_record(run_dir).get("phase")
    metrics = {
        "split": split,
        "dataset": config.dataset,
        "model_phase": phase,
        "tta": tta,
        **metrics,
    }
    if not write:
        return metrics
    paths.write_json(runs.metrics_path(run_dir, split), metrics, sort_keys=False)
    write_plots(run_dir, split, metrics, class_names)
    return metrics


def predict_split(model, split_ds, *, image_size, batch_size, verbose="auto"):
    """Returns `(labels [N] int, probabilities [N, C] float)` over a split."""
    batches = pipeline.eval_dataset(split_ds, image_size=image_size, batch_size=batch_size)
    steps = int(batches.cardinality())
    verbose = keras_verbose(verbose)
    progbar = keras.utils.Progbar(steps if steps > 0 else None, verbose=verbose, unit_name="batch")
    progbar = progbar if verbose else None
    labels, probabilities = [], []
    for step, (images, batch_labels) in enumerate(batches):
        # Eager call: no graph tracing, which costs more than a test split's
        # worth of eager overhead (the convolutions dominate either way).
        probabilities.append(np.asarray(model(images, training=False), np.float64))
        labels.append(np.asarray(batch_labels).reshape(-1))
        if progbar is not None:
            progbar.update(step + 1)
    if not labels:
        raise UserError("The split is empty: nothing to evaluate.")
    return np.concatenate(labels).astype(np.int64), np.concatenate(probabilities)


def compute_metrics(labels, probabilities, class_names):
    """Computes the metrics of `evaluate` from labels and predicted probabilities.

    Example: labels [0, 1], probabilities [[.9, .1], [.8, .2]] -> accuracy 0.5,
    per_country[class_names[1]]["recall"] 0.0, balanced_accuracy 0.5 (the
    mean recall of the countries present in `labels`).
    """
    labels = np.asarray(labels, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    num_classes = len(class_names)
    predictions = probabilities.argmax(axis=1)
    k = min(5, num_classes)
    top_k = np.argsort(-probabilities, axis=1)[:, :k]
    distances = distances_km(labels, predictions, class_names)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    support = confusion.sum(axis=1)
    majority = int(support.argmax())
    return {
        "num_examples": int(labels.size),
        "num_classes": num_classes,
        "accuracy": float(np.mean(predictions == labels)),
        "balanced_accuracy": float(np.mean(np.diag(confusion)[support > 0] / support[support > 0])),
        "top5_accuracy": float(np.mean((top_k == labels[:, None]).any(axis=1))),
        **distance_summary(distances),
        "majority_class": class_names[majority],
        "majority_class_accuracy": float(support[majority] / labels.size),
        "chance_accuracy": 1.0 / num_classes,
        "per_country": _per_country(confusion, class_names),
        "class_names": list(class_names),
        "confusion_matrix": confusion.tolist(),
    }


def _per_country(confusion, class_names):
    """Precision, recall and support per country (0.0 where undefined)."""
    correct = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0)
    support = confusion.sum(axis=1)
    precision = np.divide(correct, predicted, out=np.zeros_like(correct), where=predicted > 0)
    recall = np.divide(correct, support, out=np.zeros_like(correct), where=support > 0)
    return {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(class_names)
    }


def write_plots(run_dir, split, metrics, class_names):
    """Writes the confusion matrix, per-country accuracy and training curves."""
    out = runs.plots_dir(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    accuracy = metrics["accuracy"]
    plots.confusion_matrix(
        metrics["confusion_matrix"],
        class_names,
        out / f"confusion_matrix_{split}.png",
        title=f"Confusion matrix, {split} split (accuracy {accuracy:.1%})",
    )
    per_country = [metrics["per_country"][name] for name in class_names]
    plots.per_country_accuracy(
        [row["recall"] for row in per_country],
        [row["support"] for row in per_country],
        class_names,
        out / f"per_country_accuracy_{split}.png",
        title=f"Per-country accuracy, {split} split",
    )
    histories = {phase: runs.read_history(run_dir, phase) for phase in PHASES}
    plots.training_curves(histories, out / "training_curves.png")
