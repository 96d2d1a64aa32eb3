"""One training phase of a recipe, as `train` and every tuning trial run it.

A phase ("frozen" or "finetune", `keras_geo.config.PHASES`) is a model built
for the recipe, compiled with its loss, optimizer and learning-rate schedule,
and fitted on the splits with the recipe's class weights and augmentation:

    data = phase.load_data(config, runtime)
    model = phase.build_phase_model(
        config, "finetune", data.class_names, runtime=runtime,
        steps_per_epoch=phase.steps_per_epoch(data.train, config.batch_size),
    )
    train_ds, val_ds = phase.image_datasets(config, data.train, data.validation, runtime=runtime)
    model.fit(train_ds, validation_data=val_ds, epochs=config.epochs("finetune"),
              class_weight=phase.class_weight(config, runtime, len(data.class_names)))

`keras_geo.training` orchestrates the phases of a run (checkpoints, resume,
the best phase); `keras_geo.tuning` runs one phase per trial. Both go
through here, so a trial compiles what `train` compiles.
"""

import dataclasses
import math

import keras
import numpy as np

from keras_geo import datasets, pipeline
from keras_geo import model as model_lib
from keras_geo.config import Runtime
from keras_geo.losses import HaversineCrossEntropy


@dataclasses.dataclass(frozen=True)
class Data:
    """The splits a phase trains and validates on."""

    train: object  # unbatched (uint8 image, int64 label) tf.data.Dataset
    validation: object
    class_names: list


def load_data(config, runtime=None, *, max_examples=None):
    """The training and validation splits of `config.dataset` and its class names.

    Args:
        config: The recipe (`TrainConfig`).
        runtime: Its `Runtime`: the data dir; with `data_service`, the training
            split is read for the tf.data service (`image_datasets`).
        max_examples: Keep only the first N examples of each split (smoke runs).
    """
    runtime = runtime or Runtime()
    service = bool(runtime.data_service)
    train = datasets.load_split(
        config.dataset, "train", data_dir=runtime.data_dir, for_service=service
    )
    validation = datasets.load_split(config.dataset, "validation", data_dir=runtime.data_dir)
    if max_examples:
        train, validation = train.take(max_examples), validation.take(max_examples)
    names = datasets.class_names(config.dataset, data_dir=runtime.data_dir)
    return Data(train=train, validation=validation, class_names=names)


def steps_per_epoch(train, batch_size, cap=None):
    """Batches in an epoch of the unbatched split `train`, at most `cap` (None: no cap)."""
    steps = math.ceil(int(train.cardinality()) / batch_size)
    return min(steps, cap) if cap else steps


def build_model(config, class_names, runtime=None):
    """Builds the model of `config` for `class_names` (phase "frozen", not compiled).

    `runtime.mixed_precision` gives the model the "mixed_float16" policy (its
    head stays float32); the global policy is left alone.
    """
    return model_lib.build_model(
        len(class_names),
        backbone=config.backbone,
        image_size=config.image_size,
        weights=config.weights,
        mixed_precision=(runtime or Runtime()).mixed_precision,
    )


def build_phase_model(config, phase, class_names, *, runtime=None, steps_per_epoch=None):
    """Builds the model of `config` compiled for `phase`, as `train` runs that phase.

    The one compile path of training and tuning: a tuning trial calls it with
    `config.replace(**trial_values)` and the steps of its epochs
    (`steps_per_epoch`, see `compile_for_phase`).
    """
    model = build_model(config, class_names, runtime)
    compile_for_phase(model, phase, config, class_names, steps_per_epoch=steps_per_epoch)
    return model


def build_loss(config, class_names):
    """Returns the loss of `config`.

    `loss="haversine"`: `HaversineCrossEntropy(alpha, tau_km)`.
    `loss="crossentropy"`: plain sparse cross-entropy (`alpha` ignored), or,
    with `tau_km` set, cross-entropy on haversine-smoothed labels
    (`HaversineCrossEntropy` with `alpha=0`).
    """
    if config.loss == "crossentropy" and config.tau_km is None:
        return keras.losses.SparseCategoricalCrossentropy()
    alpha = config.alpha if config.loss == "haversine" else 0.0
    return HaversineCrossEntropy(class_names, alpha=alpha, tau_km=config.tau_km)


def compile_for_phase(model, phase, config, class_names, *, steps_per_epoch=None):
    """Sets the trainable layers of `phase` and (re)compiles `model`.

    Args:
        model: From `keras_geo.model.build_model`.
        phase: "frozen" or "finetune".
        config: The `TrainConfig` (stages, rates, schedule, loss).
        class_names: Country names in label order.
        steps_per_epoch: Batches per epoch of the phase; needed by a cosine
            schedule or a warm-up (`learning_rate_schedule`).
    """
    model_lib.set_phase(
        model,
        phase,
        stages=config.finetune_stages,
        train_batchnorm=config.weights == "none",
    )
    model_lib.compile_model(
        model,
        loss=build_loss(config, class_names),
        learning_rate=learning_rate_schedule(
            config, phase, config.epochs(phase) * (steps_per_epoch or 0)
        ),
        weight_decay=config.weight_decay,
        class_names=class_names,
        jit_compile="auto",
    )


def learning_rate_schedule(config, phase, total_steps):
    """Returns the learning rate of `phase`: a float or a Keras schedule.

    `constant` with no warm-up is the paper's fixed rate (a float). Otherwise
    `keras.optimizers.schedules.CosineDecay` over the phase's `total_steps`:
    a linear warm-up from 0 over `config.warmup_epochs` epochs, then a cosine
    decay to 0 (`cosine`) or a constant rate (`constant`: `alpha=1`).

    Example: rate 1e-3, cosine, 10 steps, no warm-up: 1e-3 at step 0,
    5e-4 at step 5, 0 at step 10.
    """
    rate = config.phase_learning_rate[phase]
    if config.lr_schedule == "constant" and config.warmup_epochs == 0:
        return rate
    if total_steps <= 0:
        raise ValueError("`total_steps` must be > 0 for a schedule or a warm-up.")
    epochs = max(config.epochs(phase), 1)
    warmup = min(total_steps, round(total_steps * config.warmup_epochs / epochs))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else rate,
        decay_steps=max(total_steps - warmup, 1),
        alpha=1.0 if config.lr_schedule == "constant" else 0.0,
        warmup_target=rate if warmup else None,
        warmup_steps=warmup,
    )


def class_weight(config, runtime, num_classes, max_examples=None):
    """Keras `class_weight` of `config` from the training labels a phase sees, or None.

    Args:
        config: The recipe; `class_weight="none"` gives None (nothing is read).
        runtime: Its `Runtime` (the data dir).
        num_classes: Classes of the head.
        max_examples: The first N training examples only, as `load_data`.
    """
    if config.class_weight == "none":
        return None
    labels = datasets.split_labels(
        config.dataset, "train", data_dir=(runtime or Runtime()).data_dir
    )
    return class_weights(config, labels[:max_examples], num_classes)


def class_weights(config, labels, num_classes):
    """Returns Keras `class_weight` for `config.class_weight`, or None ("none").

    `balanced`: `n / (C * n_c)` (scikit-learn's "balanced"), so every country
    weighs as much in the loss as any other; `sqrt`: the square root of that,
    rescaled so the weights average 1 over the training examples (the loss
    keeps its scale). A country with no training example gets 0.

    Example: labels [0, 0, 0, 1] -> balanced {0: 2/3, 1: 2.0}.
    """
    if config.class_weight == "none":
        return None
    counts = np.bincount(np.asarray(labels, np.int64).reshape(-1), minlength=num_classes)
    present = counts > 0
    weights = np.zeros(num_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    if config.class_weight == "sqrt":
        weights = np.sqrt(weights)
        weights *= counts.sum() / np.sum(weights * counts)
    return {index: float(weight) for index, weight in enumerate(weights)}


def image_datasets(config, train, validation=None, *, runtime=None):
    """The batched image streams `fit` trains and validates on, for `config`.

    `train` is augmented (`pipeline.train_dataset`: crops, flips, seed) and,
    with `runtime.data_service`, produced by the tf.data service;
    `validation` (or None) is resized for evaluation. Used by `train` and by
    every tuning trial.

    Returns:
        `(train_ds, val_ds)`; `val_ds` is None without `validation`.
    """
    train_ds = pipeline.train_dataset(
        train,
        image_size=config.image_size,
        batch_size=config.batch_size,
        flip=config.flip,
        seed=config.seed,
        min_area=config.crop_min_area,
    )
    if runtime is not None and runtime.data_service:
        train_ds = pipeline.through_service(train_ds, runtime.data_service)
    val_ds = None
    if validation is not None:
        val_ds = pipeline.eval_dataset(
            validation,
            image_size=config.image_size,
            batch_size=pipeline.eval_batch_size(config.batch_size),
        )
    return train_ds, val_ds
