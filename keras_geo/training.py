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

With `Runtime(strategy="multiworker")` every worker of the `TF_CONFIG` cluster runs
`train` with the same arguments; the chief writes the run directory, the
others a temporary folder (`keras_geo.distribute`), and the chief alone
extracts the frozen phase's features and shares them.
"""

import contextlib
import dataclasses
import math
import pathlib

import keras

from keras_geo import distribute, evaluation, features, locks, runs
from keras_geo import phase as phase_lib
from keras_geo.compat import keras_callbacks
from keras_geo.compat.keras_multiworker import keras_multiworker_fix
from keras_geo.config import PHASES, Runtime
from keras_geo.console import keras_verbose
from keras_geo.divergence import StopOnDivergence


def train(
    config,
    run_dir,
    *,
    runtime=None,
    callbacks=(),
    verbose="auto",
    steps_per_epoch=None,
    feature_cache_dir=None,
    overwrite=False,
):
    """Trains both phases of `config` into `run_dir` and evaluates the test split.

    Args:
        config: the recipe, a `keras_geo.config.TrainConfig`.
        run_dir: the run directory; created, or resumed if it holds the same
            recipe (a different one raises `UserError`).
        runtime: where and how it runs, a `keras_geo.config.Runtime` (data
            dir, input service, strategy, precision); None: `Runtime()`. It
            may differ from the one a resumed run last ran with.
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
    runtime = runtime or Runtime()
    # First: a multi-worker strategy must exist before any other TF op.
    strategy = distribute.make_strategy(runtime.strategy)
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
                keras_multiworker_fix(),
                distribute.peer_failure_as_user_error(),
            )
        with fix, failure:
            data = phase_lib.load_data(config, runtime)
            if multiworker:  # The strategy shards the splits by element.
                shard = distribute.shard_by_element
                data = dataclasses.replace(
                    data, train=shard(data.train), validation=shard(data.validation)
                )
            with strategy.scope():
                # Built before the run directory is written: a weights file that
                # does not fit the backbone leaves nothing behind.
                model = phase_lib.build_model(config, data.class_names, runtime)
                run_dir = runs.prepare_run_dir(
                    config, run_dir, runtime=runtime, overwrite=overwrite
                )
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
                        runtime=runtime,
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


def _restore_weights(model, run_dir):
    """Loads the weights of the last finished phase, if any."""
    done = runs.phases_done(run_dir)
    finished = [phase for phase in PHASES if phase in done]
    if finished:
        model.load_weights(run_dir / done[finished[-1]]["weights"])


def _run_phase(model, phase, config, data, run_dir, fit_kwargs):
    """Trains one phase, restores its best weights and records it as done."""
    epochs = config.epochs(phase)
    best = runs.checkpoint_path(run_dir, phase)
    if epochs > 0:
        on_features = phase == "frozen" and config.cache_features
        cap = None if on_features else fit_kwargs["steps_per_epoch"]
        steps = phase_lib.steps_per_epoch(data.train, config.batch_size, cap)
        phase_lib.compile_for_phase(model, phase, config, data.class_names, steps_per_epoch=steps)
        callbacks = _phase_callbacks(run_dir, phase, config) + list(fit_kwargs["callbacks"])
        verbose = fit_kwargs["verbose"]
        runtime = fit_kwargs["runtime"]
        weights = phase_lib.class_weight(config, runtime, len(data.class_names))
        if on_features:
            cache_dir = fit_kwargs["cache_dir"]
            _fit_head_on_features(model, config, data, cache_dir, callbacks, verbose, weights)
        else:
            steps = fit_kwargs["steps_per_epoch"]
            _fit_images(model, config, runtime, data, epochs, callbacks, verbose, steps, weights)
    if epochs > 0 and best.is_file():
        model.load_weights(best)
    else:
        keras_callbacks.save_weights(model, best)
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


def _fit_images(
    model, config, runtime, data, epochs, callbacks, verbose, steps_per_epoch, class_weight
):
    train_ds, val_ds = phase_lib.image_datasets(
        config, data.train, data.validation, runtime=runtime
    )
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

    Keras' own callbacks, writing each file atomically (`keras_geo.compat.keras_callbacks`);
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
        keras_callbacks.AtomicCSVLogger(str(history), append=True),
        keras_callbacks.AtomicModelCheckpoint(
            str(best),
            monitor="val_accuracy",
            mode="max",
            save_best_only=True,
            save_weights_only=True,
            initial_value_threshold=best_so_far,
        ),
        keras_callbacks.AtomicBackupAndRestore(str(backup)),
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
