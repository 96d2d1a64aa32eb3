"""Two-phase transfer learning of ResNet50 on GeoGuessr screenshots.

`train(config, run_dir)` runs, in order:

1. phase `frozen` (feature extraction, `config.epochs_frozen` epochs): the
   whole backbone frozen, the head trained; on cached backbone features
   (`keras_geo.features`, no augmentation) when `config.cache_features`, else
   on augmented images;
2. phase `finetune` (`config.epochs_finetune` epochs): the backbone's last
   `config.finetune_stages` stages trainable (1: ResNet `conv5_*`, the
   paper), recompiled at `config.finetune_learning_rate`, starting from the
   frozen phase's best head. With pretrained weights BatchNorm stays frozen
   in inference mode; with `weights="none"` it trains (frozen random
   statistics make fine-tuning diverge);
3. saves `model.keras` and evaluates the test split
   (`keras_geo.evaluation.evaluate`).

Each phase ends by restoring its best weights by validation accuracy (as the
authors' PyTorch loop kept its best epoch), records itself in
`phases_done.json` and is never redone. `model.keras` holds the weights of
the phase with the best validation accuracy (normally `finetune`; recorded in
`model.json`). An interrupted phase resumes at its
last finished epoch (`keras.callbacks.BackupAndRestore`). See
`keras_geo.runs` for the run directory layout.

With `strategy="multiworker"` every worker of the `TF_CONFIG` cluster runs
`train` with the same arguments; the chief writes the run directory, the
others a temporary folder (`keras_geo.distribute`), and the chief alone
extracts the frozen phase's features and shares them.
"""

import contextlib
import dataclasses
import math
import pathlib

import keras
import numpy as np
import tensorflow as tf

from keras_geo import (
    checkpoints,
    datasets,
    distribute,
    evaluation,
    features,
    locks,
    pipeline,
    runs,
)
from keras_geo import model as model_lib
from keras_geo.config import PHASES
from keras_geo.console import keras_verbose
from keras_geo.divergence import StopOnDivergence
from keras_geo.losses import HaversineCrossEntropy


@dataclasses.dataclass(frozen=True)
class _Data:
    train: object  # unbatched (uint8 image, int64 label) tf.data.Dataset
    validation: object
    class_names: list


def train(
    config,
    run_dir,
    *,
    callbacks=(),
    verbose="auto",
    steps_per_epoch=None,
    feature_cache_dir=None,
    overwrite=False,
):
    """Trains both phases of `config` into `run_dir` and evaluates the test split.

    Args:
        config: a `keras_geo.config.TrainConfig`.
        run_dir: the run directory; created, or resumed if it holds the same
            config (a different config raises `UserError`).
        callbacks: extra Keras callbacks for every phase's `fit`.
        verbose: passed to `fit` (`"auto"`: `keras_geo.console.keras_verbose`).
        steps_per_epoch: caps the batches of an image-path epoch (smoke tests
            and benchmarks; not part of the config, so not for real runs).
        feature_cache_dir: where the frozen phase's feature cache lives;
            default `RUN_DIR/features` (files are keyed by the backbone's
            weights, dataset, split and image size, so runs may share one).
        overwrite: start afresh: delete what a previous run trained into
            `run_dir` (`runs.TRAINING_OUTPUTS`) first.

    Returns:
        The trained `keras.Model` (best weights of the last phase run).
    """

    verbose = keras_verbose(verbose)
    # First: a multi-worker strategy must exist before any other TF op.
    strategy = make_strategy(config.strategy)
    multiworker = distribute.is_multiworker(strategy)
    chief = distribute.is_chief() if multiworker else True
    shared_dir = pathlib.Path(run_dir)
    run_dir = distribute.work_dir(run_dir) if multiworker else shared_dir
    with locks.exclusive(run_dir, "--run-dir"):  # One writer at a time.
        runs.check_run_dir(config, run_dir, overwrite=overwrite)
        keras.utils.set_random_seed(config.seed)
        fix, failure = contextlib.nullcontext(), contextlib.nullcontext()
        if multiworker:
            fix, failure = (
                distribute.keras_multiworker_fix(),
                distribute.peer_failure_as_user_error(),
            )
        with fix, failure:
            data = _load_data(config, shard=multiworker)
            with strategy.scope():
                # Built before the run directory is written: a weights file that
                # does not fit the backbone leaves nothing behind.
                model = build_model(config, data.class_names)
                run_dir = runs.prepare_run_dir(config, run_dir, overwrite=overwrite)
                runs.write_class_names(run_dir, data.class_names)
                _restore_weights(model, run_dir)
                for phase in PHASES:
                    if phase in runs.phases_done(run_dir):
                        continue
                    fit_kwargs = dict(
                        callbacks=callbacks,
                        verbose=verbose,
                        steps_per_epoch=steps_per_epoch,
                        cache_dir=feature_cache_dir or run_dir / "features",
                    )
                    if multiworker and phase == "frozen" and config.cache_features:
                        _share_features(model, config, data, fit_kwargs["cache_dir"], strategy)
                    _run_phase(model, phase, config, data, run_dir, fit_kwargs)
                _keep_best_phase(model, run_dir)
            if not chief:
                distribute.remove_work_dir(shared_dir)
                return model
            runs.save_model(model, run_dir / runs.MODEL_FILE, data.class_names, config)
            evaluation.evaluate(run_dir, "test", model=model, verbose=verbose)
        return model


def build_model(config, class_names):
    """Builds the model of `config` for `class_names` (phase "frozen", not compiled).

    `config.mixed_precision` gives the model the "mixed_float16" policy (its
    head stays float32); the global policy is left alone.
    """

    return model_lib.build_model(
        len(class_names),
        backbone=config.backbone,
        image_size=config.image_size,
        weights=config.weights,
        mixed_precision=config.mixed_precision,
    )


def build_phase_model(config, phase, class_names, *, steps_per_epoch=None):
    """Builds the model of `config` compiled for `phase`, as `train` runs that phase.

    The one compile path of training and tuning: a tuning trial calls it with
    `config.replace(**trial_values)` and the steps of its epochs
    (`steps_per_epoch`, see `compile_for_phase`).
    """
    model = build_model(config, class_names)
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
    epochs = getattr(config, f"epochs_{phase}")
    model_lib.compile_model(
        model,
        loss=build_loss(config, class_names),
        learning_rate=learning_rate_schedule(config, phase, epochs * (steps_per_epoch or 0)),
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
    epochs = max(getattr(config, f"epochs_{phase}"), 1)
    warmup = min(total_steps, round(total_steps * config.warmup_epochs / epochs))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else rate,
        decay_steps=max(total_steps - warmup, 1),
        alpha=1.0 if config.lr_schedule == "constant" else 0.0,
        warmup_target=rate if warmup else None,
        warmup_steps=warmup,
    )


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


def make_strategy(name):
    """Returns the `tf.distribute` strategy named by `TrainConfig.strategy`.

    `"mirrored"` replicates over every local GPU, or, with none, over every
    logical CPU device (one replica on a plain CPU machine).
    `"multiworker"`: `MultiWorkerMirroredStrategy` over the `TF_CONFIG`
    cluster (`keras_geo.distribute`).
    """

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "multiworker":
        return distribute.multiworker_strategy()
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([device.name for device in devices])


def _load_data(config, shard=False):
    """The splits; `shard`: the strategy shards them by element (multi-worker)."""

    def load(split):
        service = bool(config.data_service) and split == "train"
        ds = datasets.load_split(
            config.dataset, split, data_dir=config.data_dir, for_service=service
        )
        return distribute.shard_by_element(ds) if shard else ds

    return _Data(
        train=load("train"),
        validation=load("validation"),
        class_names=datasets.class_names(config.dataset, data_dir=config.data_dir),
    )


def _restore_weights(model, run_dir):
    """Loads the weights of the last finished phase, if any."""
    done = runs.phases_done(run_dir)
    finished = [phase for phase in PHASES if phase in done]
    if finished:
        model.load_weights(run_dir / done[finished[-1]]["weights"])


def _run_phase(model, phase, config, data, run_dir, fit_kwargs):
    """Trains one phase, restores its best weights and records it as done."""
    epochs = getattr(config, f"epochs_{phase}")
    best = runs.checkpoint_path(run_dir, phase)
    if epochs > 0:
        on_features = phase == "frozen" and config.cache_features
        steps = _steps_per_epoch(config, data, None if on_features else fit_kwargs)
        compile_for_phase(model, phase, config, data.class_names, steps_per_epoch=steps)
        callbacks = _phase_callbacks(run_dir, phase, config) + list(fit_kwargs["callbacks"])
        verbose = fit_kwargs["verbose"]
        weights = _class_weight(config, data)
        if on_features:
            cache_dir = fit_kwargs["cache_dir"]
            _fit_head_on_features(model, config, data, cache_dir, callbacks, verbose, weights)
        else:
            steps = fit_kwargs["steps_per_epoch"]
            _fit_images(model, config, data, epochs, callbacks, verbose, steps, weights)
    if epochs > 0 and best.is_file():
        model.load_weights(best)
    else:
        checkpoints.save_weights(model, best)
    history = runs.read_history(run_dir, phase)
    runs.mark_phase_done(
        run_dir,
        phase,
        {
            "epochs": epochs,
            "best_val_accuracy": _best_val_accuracy(history),
            "weights": str(best.relative_to(run_dir)),
        },
    )


def _steps_per_epoch(config, data, fit_kwargs):
    """Batches per epoch: the whole split, capped by an image path's `steps_per_epoch`."""
    steps = math.ceil(int(data.train.cardinality()) / config.batch_size)
    cap = fit_kwargs and fit_kwargs["steps_per_epoch"]
    return min(steps, cap) if cap else steps


def _class_weight(config, data):
    if config.class_weight == "none":
        return None
    labels = datasets.split_labels(config.dataset, "train", data_dir=config.data_dir)
    return class_weights(config, labels, len(data.class_names))


def _keep_best_phase(model, run_dir):
    """Loads the weights of the phase with the best validation accuracy.

    Usually the last phase; a fine-tuning phase that made validation accuracy
    worse (e.g. random initial weights) gives way to the frozen phase. The
    choice is written to `model.json` and reported by `evaluate`.
    """
    done = runs.phases_done(run_dir)
    scored = [
        (record["best_val_accuracy"], index, phase)
        for index, phase in enumerate(PHASES)
        if (record := done.get(phase)) and record.get("best_val_accuracy") is not None
    ]
    if not scored:
        return
    val_accuracy, _, phase = max(scored)  # ties: the later phase
    last = [p for p in PHASES if p in done][-1]
    if phase != last:
        model.load_weights(run_dir / done[phase]["weights"])
    runs.write_model_record(run_dir, {"phase": phase, "val_accuracy": val_accuracy})


def _fit_images(model, config, data, epochs, callbacks, verbose, steps_per_epoch, class_weight):
    train_ds, val_ds = image_datasets(config, data.train, data.validation)
    model.fit(
        train_ds,
        validation_data=val_ds,
        shuffle=False,  # `train_ds` shuffles itself; Keras warns that it ignores shuffle=True.
        epochs=epochs,
        callbacks=callbacks,
        verbose=verbose,
        steps_per_epoch=steps_per_epoch,
        class_weight=class_weight,
    )


def image_datasets(config, train, validation=None):
    """The batched image streams `fit` trains and validates on, for `config`.

    `train` is augmented (`pipeline.train_dataset`: crops, flips, seed) and,
    with `config.data_service`, produced by the tf.data service;
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
    if config.data_service:
        train_ds = pipeline.through_service(train_ds, config.data_service)
    val_ds = None
    if validation is not None:
        val_ds = pipeline.eval_dataset(
            validation, image_size=config.image_size, batch_size=config.batch_size
        )
    return train_ds, val_ds


def _fit_head_on_features(model, config, data, cache_dir, callbacks, verbose, class_weight):
    features.fit_head_on_features(
        model,
        data.train,
        data.validation,
        epochs=config.epochs_frozen,
        batch_size=config.batch_size,
        image_size=config.image_size,
        callbacks=callbacks,
        cache_dir=cache_dir,
        dataset_key=config.dataset,
        verbose=verbose,
        class_weight=class_weight,
    )


def _share_features(model, config, data, cache_dir, strategy):
    """Multi-worker frozen phase: the chief extracts, every worker gets its files.

    The chief reads or writes the feature cache as a single process would;
    the others receive the arrays (`distribute.broadcast_from_chief`) and
    write them under their own cache key, where `fit_head_on_features` then
    finds them.
    """
    for split, ds in (("train", data.train), ("validation", data.validation)):
        arrays = None
        if distribute.is_chief():
            arrays = features.cached_features(
                model,
                ds,
                batch_size=config.batch_size,
                cache_dir=cache_dir,
                dataset_key=config.dataset,
                split=split,
                eager=True,
            )
        arrays = distribute.broadcast_from_chief(strategy, arrays)
        if not distribute.is_chief():
            path, meta = features.cache_file(
                model, ds, cache_dir=cache_dir, dataset_key=config.dataset, split=split
            )
            features.write_cache(path, *arrays, meta)


def _phase_callbacks(run_dir, phase, config):
    """A divergence guard, CSV history, best checkpoint by val_accuracy, backup for resuming.

    Keras' own callbacks, writing each file atomically (`keras_geo.checkpoints`);
    the guard first, so a diverging epoch writes none of them.
    """
    backup = runs.backup_dir(run_dir, phase)
    history = runs.history_path(run_dir, phase)
    best = runs.checkpoint_path(run_dir, phase)
    resuming = (backup / "training_metadata.json").is_file()
    if not resuming:  # A fresh phase: drop what an unbacked attempt left.
        history.unlink(missing_ok=True)
        best.unlink(missing_ok=True)
    history.parent.mkdir(parents=True, exist_ok=True)
    best.parent.mkdir(parents=True, exist_ok=True)
    best_so_far = _best_val_accuracy(runs.read_history(run_dir, phase))
    return [
        StopOnDivergence(phase, _divergence_advice(config, phase)),
        checkpoints.AtomicCSVLogger(str(history), append=True),
        checkpoints.AtomicModelCheckpoint(
            str(best),
            monitor="val_accuracy",
            mode="max",
            save_best_only=True,
            save_weights_only=True,
            initial_value_threshold=best_so_far,
        ),
        checkpoints.AtomicBackupAndRestore(str(backup)),
    ]


def _divergence_advice(config, phase):
    """What to lower when `phase` diverges, naming the flag that sets its rate."""
    flag = "--learning-rate"
    if phase == "finetune" and config.finetune_learning_rate is not None:
        flag = "--finetune-learning-rate"
    return f"lower {flag} (now {config.phase_learning_rate[phase]:g})"


def _best_val_accuracy(history):
    values = [row["val_accuracy"] for row in history if "val_accuracy" in row]
    values = [value for value in values if not math.isnan(value)]
    return max(values) if values else None
