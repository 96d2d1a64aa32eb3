"""Two-phase transfer learning of ResNet50 on GeoGuessr screenshots.

`train(config, run_dir)` runs, in order:

1. phase `frozen` (feature extraction, `config.epochs_frozen` epochs): the
   whole backbone frozen, the head trained; on cached backbone features
   (`keras_geo.features`, no augmentation) when `config.cache_features`, else
   on augmented images;
2. phase `finetune` (`config.epochs_finetune` epochs): `conv5_*` trainable,
   BatchNorm in inference mode, recompiled, starting from the frozen phase's
   best head;
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

from keras_geo import distribute, runs

PHASES = ("frozen", "finetune")


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
):
    """Trains both phases of `config` into `run_dir` and evaluates the test split.

    Args:
        config: a `keras_geo.config.TrainConfig`.
        run_dir: the run directory; created, or resumed if it holds the same
            config (a different config raises `UserError`).
        callbacks: extra Keras callbacks for every phase's `fit`.
        verbose: passed to `fit` (`"auto"`: progress bars).
        steps_per_epoch: caps the batches of an image-path epoch (smoke tests
            and benchmarks; not part of the config, so not for real runs).
        feature_cache_dir: where the frozen phase's feature cache lives;
            default `RUN_DIR/features` (files are keyed by the backbone's
            weights, dataset, split and image size, so runs may share one).

    Returns:
        The trained `keras.Model` (best weights of the last phase run).
    """
    import keras

    from keras_geo import evaluation

    # First: a multi-worker strategy must exist before any other TF op.
    strategy = make_strategy(config.strategy)
    multiworker = distribute.is_multiworker(strategy)
    chief = distribute.is_chief() if multiworker else True
    shared_dir = pathlib.Path(run_dir)
    run_dir = runs.prepare_run_dir(config, distribute.work_dir(run_dir) if multiworker else run_dir)
    keras.utils.set_random_seed(config.seed)
    fix, failure = contextlib.nullcontext(), contextlib.nullcontext()
    if multiworker:
        fix, failure = distribute.keras_multiworker_fix(), distribute.peer_failure_as_user_error()
    with _dtype_policy(config.mixed_precision), fix, failure:
        data = _load_data(config, shard=multiworker)
        runs.write_class_names(run_dir, data.class_names)
        with strategy.scope():
            model = _restore_model(config, run_dir, data.class_names)
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


def build_loss(config, class_names):
    """Returns the loss of `config`.

    `loss="haversine"`: `HaversineCrossEntropy(alpha, tau_km)`.
    `loss="crossentropy"`: plain sparse cross-entropy (`alpha` ignored), or,
    with `tau_km` set, cross-entropy on haversine-smoothed labels
    (`HaversineCrossEntropy` with `alpha=0`).
    """
    import keras

    from keras_geo.losses import HaversineCrossEntropy

    if config.loss == "crossentropy" and config.tau_km is None:
        return keras.losses.SparseCategoricalCrossentropy()
    alpha = config.alpha if config.loss == "haversine" else 0.0
    return HaversineCrossEntropy(class_names, alpha=alpha, tau_km=config.tau_km)


def compile_for_phase(model, phase, config, class_names):
    """Sets the trainable layers of `phase` and (re)compiles `model`."""
    from keras_geo import model as model_lib

    model_lib.set_phase(model, phase)
    model_lib.compile_model(
        model,
        loss=build_loss(config, class_names),
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        class_names=class_names,
        jit_compile="auto",
    )


def make_strategy(name):
    """Returns the `tf.distribute` strategy named by `TrainConfig.strategy`.

    `"mirrored"` replicates over every local GPU, or, with none, over every
    logical CPU device (one replica on a plain CPU machine).
    `"multiworker"`: `MultiWorkerMirroredStrategy` over the `TF_CONFIG`
    cluster (`keras_geo.distribute`).
    """
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "multiworker":
        return distribute.multiworker_strategy()
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([device.name for device in devices])


@contextlib.contextmanager
def _dtype_policy(mixed_precision):
    """Sets `mixed_float16` as the global policy for the block if asked."""
    import keras

    previous = keras.mixed_precision.global_policy()
    if mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _load_data(config, shard=False):
    """The splits; `shard`: the strategy shards them by element (multi-worker)."""
    from keras_geo import datasets

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


def _restore_model(config, run_dir, class_names):
    """Builds the model; loads the weights of the last finished phase if any."""
    from keras_geo import model as model_lib

    model = model_lib.build_model(
        len(class_names), image_size=config.image_size, weights=config.weights
    )
    done = runs.phases_done(run_dir)
    finished = [phase for phase in PHASES if phase in done]
    if finished:
        model.load_weights(run_dir / done[finished[-1]]["weights"])
    return model


def _run_phase(model, phase, config, data, run_dir, fit_kwargs):
    """Trains one phase, restores its best weights and records it as done."""
    epochs = getattr(config, f"epochs_{phase}")
    best = runs.checkpoint_path(run_dir, phase)
    if epochs > 0:
        compile_for_phase(model, phase, config, data.class_names)
        callbacks = _phase_callbacks(run_dir, phase) + list(fit_kwargs["callbacks"])
        verbose = fit_kwargs["verbose"]
        if phase == "frozen" and config.cache_features:
            cache_dir = fit_kwargs["cache_dir"]
            _fit_head_on_features(model, config, data, cache_dir, callbacks, verbose)
        else:
            steps = fit_kwargs["steps_per_epoch"]
            _fit_images(model, config, data, epochs, callbacks, verbose, steps)
    if epochs > 0 and best.is_file():
        model.load_weights(best)
    else:
        best.parent.mkdir(parents=True, exist_ok=True)
        model.save_weights(best)
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


def _fit_images(model, config, data, epochs, callbacks, verbose, steps_per_epoch):
    from keras_geo import pipeline

    train_ds = pipeline.train_dataset(
        data.train,
        image_size=config.image_size,
        batch_size=config.batch_size,
        flip=config.flip,
        seed=config.seed,
    )
    if config.data_service:
        train_ds = pipeline.through_service(train_ds, config.data_service)
    val_ds = pipeline.eval_dataset(
        data.validation, image_size=config.image_size, batch_size=config.batch_size
    )
    model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=epochs,
        callbacks=callbacks,
        verbose=verbose,
        steps_per_epoch=steps_per_epoch,
    )


def _fit_head_on_features(model, config, data, cache_dir, callbacks, verbose):
    from keras_geo import features

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
    )


def _share_features(model, config, data, cache_dir, strategy):
    """Multi-worker frozen phase: the chief extracts, every worker gets its files.

    The chief reads or writes the feature cache as a single process would;
    the others receive the arrays (`distribute.broadcast_from_chief`) and
    write them under their own cache key, where `fit_head_on_features` then
    finds them.
    """
    from keras_geo import features

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


def _phase_callbacks(run_dir, phase):
    """CSV history, best checkpoint by val_accuracy, and backup for resuming."""
    import keras

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
        keras.callbacks.CSVLogger(str(history), append=True),
        keras.callbacks.ModelCheckpoint(
            str(best),
            monitor="val_accuracy",
            mode="max",
            save_best_only=True,
            save_weights_only=True,
            initial_value_threshold=best_so_far,
        ),
        keras.callbacks.BackupAndRestore(str(backup)),
    ]


def _best_val_accuracy(history):
    values = [row["val_accuracy"] for row in history if "val_accuracy" in row]
    values = [value for value in values if not math.isnan(value)]
    return max(values) if values else None
