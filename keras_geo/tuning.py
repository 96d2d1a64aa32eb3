"""Random search over the paper's four hyperparameters with KerasTuner.

The paper sampled batch size, learning rate, the loss weight alpha and weight
decay at random for 30 trials of 10 epochs, then trained the best setting for
40 epochs. `search` runs that search with `keras_tuner.RandomSearch` and
writes, under `RUN_DIR/tuning/`:

- `search/`: KerasTuner's own project (oracle and one `trial_*/` per trial);
  rerunning the same command resumes from it, no finished trial runs again.
- `trials.csv`, `best.json` (TrainConfig field names, for
  `keras-geo train --hparams`), `search.png` (see `keras_geo.tuning_report`).

Distributed search uses KerasTuner's chief/worker mode unchanged: set
`KERASTUNER_TUNER_ID` (`chief`, `tuner0`, `tuner1`, ...),
`KERASTUNER_ORACLE_IP` and `KERASTUNER_ORACLE_PORT` and run the same
`keras-geo tune` command in every process, all sharing one `--run-dir`.
"""

import json
import os
import re
import time

import keras
import keras_tuner

from keras_geo import tuning_report
from keras_geo.config import MIN_IMAGE_SIZE
from keras_geo.errors import UserError

# The search space. The paper names the four hyperparameters but gives no
# ranges; the defaults are the authors' code values (REFERENCE.md).
LEARNING_RATES = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
WEIGHT_DECAYS = (0.0, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3)
ALPHA_RANGE = (0.0, 5.0, 0.25)  # min, max, step
BATCH_SIZE_RANGE = (16, 256, 4)  # min, max, step (180 = 16 + 41 * 4)
DEFAULTS = {
    "batch_size": 180,
    "learning_rate": 1e-3,
    "weight_decay": 1e-4,
    "alpha": 2.5,
}
HYPERPARAMETERS = tuple(DEFAULTS)

OBJECTIVE = "val_accuracy"  # Not val_loss: alpha rescales the loss.
PHASES = ("finetune", "frozen")
PROJECT_NAME = "search"
SIDE_CAR = "keras_geo.json"  # Per-trial record written by the tuner that ran it.
CONFIG_FILE = "search_config.json"
# TrainConfig fields that a search keeps fixed (a resume must not change them).
_HYPERMODEL_FIELDS = (
    "image_size",
    "weights",
    "flip",
    "tau_km",
    "seed",
    "mixed_precision",
    "backbone",
    "finetune_stages",
)
_FIXED_FIELDS = ("dataset", "class_weight", *_HYPERMODEL_FIELDS)


class _FatalUserError(UserError, keras_tuner.errors.FatalError):
    """A `UserError` inside a trial: KerasTuner re-raises it, the CLI prints it."""


class NaNLossError(keras_tuner.errors.FailedTrialError):
    """The training loss became NaN: the trial is marked FAILED, not retried."""


class FailOnNaNLoss(keras.callbacks.Callback):
    """Fails the trial at the end of an epoch whose training loss is NaN or inf.

    Checked per epoch, not per batch, so the training loop never has to wait
    for the loss value of each batch.
    """

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not abs(float(loss)) < float("inf"):
            raise NaNLossError(f"loss became {float(loss)} in epoch {epoch + 1}")


def declare_search_space(hp):
    """Declares the four hyperparameters on `hp` and returns their values.

    Space (defaults are the authors' values, marked *):

    | name          | type                  | values                         |
    |---------------|-----------------------|--------------------------------|
    | batch_size    | Int, step 4           | 16, 20, ..., 180*, ..., 256    |
    | learning_rate | Choice (log grid)     | 1e-5 3e-5 1e-4 3e-4 1e-3* 3e-3 1e-2 |
    | weight_decay  | Choice                | 0 1e-5 3e-5 1e-4* 3e-4 1e-3    |
    | alpha         | Float, step 0.25      | 0, 0.25, ..., 2.5*, ..., 5     |

    Example: `declare_search_space(keras_tuner.HyperParameters())` returns the
    defaults, `{"batch_size": 180, "learning_rate": 0.001, ...}`.
    """
    low, high, step = BATCH_SIZE_RANGE
    a_low, a_high, a_step = ALPHA_RANGE
    return {
        "batch_size": hp.Int("batch_size", low, high, step=step, default=DEFAULTS["batch_size"]),
        "learning_rate": hp.Choice(
            "learning_rate", LEARNING_RATES, default=DEFAULTS["learning_rate"]
        ),
        "weight_decay": hp.Choice("weight_decay", WEIGHT_DECAYS, default=DEFAULTS["weight_decay"]),
        "alpha": hp.Float("alpha", a_low, a_high, step=a_step, default=DEFAULTS["alpha"]),
    }


class GeoHyperModel(keras_tuner.HyperModel):
    """ResNet50 country classifier with the paper's four tuned hyperparameters.

    `build(hp)` declares `learning_rate`, `weight_decay` and `alpha` and
    returns the model for `phase`, compiled with AdamW and
    `HaversineCrossEntropy(alpha)`; `fit(hp, model, ...)` declares
    `batch_size` and batches the unbatched `(image, label)` datasets itself
    (Keras ignores `batch_size=` for a `tf.data.Dataset`). All four are
    declared up front too (`declare_hyperparameters`), so the first trial is
    sampled like the others. Space (authors' defaults marked *):

    - batch_size: Int 16..256 step 4 (180*)
    - learning_rate: Choice 1e-5, 3e-5, 1e-4, 3e-4, 1e-3*, 3e-3, 1e-2
    - weight_decay: Choice 0, 1e-5, 3e-5, 1e-4*, 3e-4, 1e-3
    - alpha: Float 0..5 step 0.25 (2.5*)

    Args:
        class_names: Label names in label order (the classes of the head).
        image_size: Square model input, pixels.
        weights: "imagenet", "none" or a local `.h5` path.
        phase: "finetune" (conv5_* trainable) or "frozen" (head only).
        flip: Random horizontal flips in the training augmentation.
        tau_km: Haversine label smoothing of the loss; None: off.
        seed: Seed of the weight initialisation (the same in every trial)
            and of the augmentation.
        mixed_precision: Build the model with the "mixed_float16" policy.
        feature_cache_dir: Frozen phase only: where backbone features are
            cached, so every trial trains the head on features computed once.
    """

    def __init__(
        self,
        class_names,
        *,
        image_size=224,
        weights="imagenet",
        phase="finetune",
        flip=True,
        tau_km=None,
        seed=0,
        mixed_precision=False,
        feature_cache_dir=None,
        backbone="resnet50",
        finetune_stages="1",
    ):
        super().__init__(name="geo")
        if phase not in PHASES:
            raise UserError(f"`phase` must be one of {PHASES}. Received: phase={phase!r}")
        if image_size < MIN_IMAGE_SIZE:
            raise UserError(
                f"`image_size` must be >= {MIN_IMAGE_SIZE}. Received: image_size={image_size}"
            )
        self.class_names = list(class_names)
        self.image_size = image_size
        self.weights = weights
        self.phase = phase
        self.flip = flip
        self.tau_km = tau_km
        self.seed = seed
        self.mixed_precision = mixed_precision
        self.feature_cache_dir = feature_cache_dir
        self.backbone = backbone
        self.finetune_stages = finetune_stages

    def declare_hyperparameters(self, hp):
        declare_search_space(hp)

    def build(self, hp):
        from keras_geo import losses
        from keras_geo import model as model_lib

        values = declare_search_space(hp)
        keras.utils.set_random_seed(self.seed)
        try:
            model = model_lib.build_model(
                len(self.class_names),
                backbone=self.backbone,
                image_size=self.image_size,
                weights=self.weights,
                mixed_precision=self.mixed_precision,
            )
        except UserError as error:  # Same for every trial: stop the search.
            raise _FatalUserError(str(error)) from error
        model_lib.set_phase(
            model,
            self.phase,
            stages=self.finetune_stages,
            train_batchnorm=str(self.weights).lower() == "none",
        )
        loss = losses.HaversineCrossEntropy(
            self.class_names, alpha=values["alpha"], tau_km=self.tau_km
        )
        model_lib.compile_model(
            model,
            loss=loss,
            learning_rate=values["learning_rate"],
            weight_decay=values["weight_decay"],
            class_names=self.class_names,
        )
        return model

    def fit(self, hp, model, x, *args, validation_data=None, callbacks=None, **kwargs):
        """Batches the unbatched datasets with the trial's batch size and trains."""
        from keras_geo import pipeline

        batch_size = declare_search_space(hp)["batch_size"]
        callbacks = [*(callbacks or []), FailOnNaNLoss()]
        if self.phase == "frozen" and self.feature_cache_dir:
            return self._fit_head(model, x, validation_data, batch_size, callbacks, **kwargs)
        train = pipeline.train_dataset(
            x,
            image_size=self.image_size,
            batch_size=batch_size,
            flip=self.flip,
            seed=self.seed,
        )
        val = None
        if validation_data is not None:
            val = pipeline.eval_dataset(
                validation_data, image_size=self.image_size, batch_size=batch_size
            )
        return model.fit(train, *args, validation_data=val, callbacks=callbacks, **kwargs)

    def _fit_head(self, model, train, val, batch_size, callbacks, **kwargs):
        from keras_geo import features

        return features.fit_head_on_features(
            model,
            train,
            val,
            epochs=kwargs.pop("epochs", 1),
            batch_size=batch_size,
            image_size=self.image_size,
            callbacks=callbacks,
            cache_dir=self.feature_cache_dir,
            **kwargs,
        )


class GeoTuner(keras_tuner.RandomSearch):
    """`RandomSearch` that records each trial and prints one line per trial.

    Differences from `RandomSearch`: the initial space comes from
    `declare_hyperparameters` alone (no throw-away ResNet50 build), no
    per-trial weight checkpoint is written (about 100 MB each for ResNet50;
    the final model is retrained from `best.json`), and each trial leaves a
    `keras_geo.json` record (status, reason of a failure, wall time) in its
    trial directory, which also works for workers of a distributed search.
    """

    def _populate_initial_space(self):
        hp = self.oracle.get_space()
        self.hypermodel.declare_hyperparameters(hp)
        self.oracle.update_space(hp)

    def run_trial(self, trial, *args, **kwargs):
        callbacks = self._deepcopy_callbacks(kwargs.pop("callbacks", []))
        if any(type(c).__name__ == "TensorBoard" for c in callbacks):
            self._configure_tensorboard_dir(callbacks, trial)
        return self._build_and_fit_model(trial, *args, callbacks=callbacks, **kwargs)

    def on_trial_begin(self, trial):
        self._trial_start = time.monotonic()
        super().on_trial_begin(trial)

    def on_trial_end(self, trial):
        wall_time = time.monotonic() - getattr(self, "_trial_start", time.monotonic())
        record = {
            "trial_id": trial.trial_id,
            "status": trial.status,
            "message": tuning_report.summarize_error(trial.message),
            "wall_time_s": round(wall_time, 1),
            "tuner_id": self.tuner_id,
        }
        path = os.path.join(self.get_trial_dir(trial.trial_id), SIDE_CAR)
        with open(path, "w") as f:
            json.dump(record, f, indent=2)
        super().on_trial_end(trial)  # The oracle scores the trial here.
        self._print_progress(trial, record)
        if not self._is_worker():
            tuning_report.write_trials_csv(os.path.dirname(self.project_dir))

    def _print_progress(self, trial, record):
        ended = self.oracle.get_trial(trial.trial_id)
        best = self.oracle.get_best_trials(1)
        best = best[0] if best and best[0].score is not None else None
        line = tuning_report.progress_line(
            trial_id=trial.trial_id,
            total=self.oracle.max_trials,
            values=trial.hyperparameters.values,
            status=ended.status if ended.status == "COMPLETED" else "FAILED",
            score=ended.score,
            best_score=best.score if best else None,
            best_id=best.trial_id if best else None,
            wall_time_s=record["wall_time_s"],
            message=record["message"],
        )
        print(line, flush=True)


def distributed_role():
    """Returns None (no chief), "chief" or "worker" from KerasTuner's env vars."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return None
    for name in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID"):
        if not os.environ.get(name):
            raise UserError(
                f"KERASTUNER_ORACLE_IP is set but {name} is not: set all three of "
                "KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT, "
                "or none."
            )
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


def enable_memory_growth():
    """Lets TensorFlow grow GPU memory as needed instead of grabbing it all."""
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # The GPU was initialised already.
            pass


def _check_search_config(tuning_dir, settings, overwrite, role):
    """Refuses to resume a search made with different fixed settings."""
    path = os.path.join(tuning_dir, CONFIG_FILE)
    if os.path.exists(path) and not overwrite:
        with open(path) as f:
            stored = json.load(f)
        changed = sorted(k for k in settings if stored.get(k) != settings[k])
        if changed:
            diff = ", ".join(f"{k}: {stored.get(k)!r} -> {settings[k]!r}" for k in changed)
            raise UserError(
                f"{tuning_dir} holds a search with other settings ({diff}); "
                "pass the same flags to resume, --overwrite to start afresh, "
                "or another --run-dir."
            )
    if role != "worker":
        os.makedirs(tuning_dir, exist_ok=True)
        with open(path, "w") as f:
            json.dump(settings, f, indent=2, sort_keys=True)


def _load_data(config, max_examples):
    from keras_geo import datasets

    train = datasets.load_split(config.dataset, "train", data_dir=config.data_dir)
    val = datasets.load_split(config.dataset, "validation", data_dir=config.data_dir)
    if max_examples:
        train, val = train.take(max_examples), val.take(max_examples)
    return train, val, datasets.class_names(config.dataset, data_dir=config.data_dir)


def _class_weight(config, num_classes, max_examples):
    """`config.class_weight` from the training labels a trial sees, or None."""
    if config.class_weight == "none":
        return None
    from keras_geo import datasets, training

    labels = datasets.split_labels(config.dataset, "train", data_dir=config.data_dir)
    return training.class_weights(config, labels[:max_examples], num_classes)


def make_tuner(hypermodel, tuning_dir, *, max_trials, seed, overwrite, max_failures=3):
    """Returns the `GeoTuner` of the project `tuning_dir/search`.

    KerasTuner treats seed 0 as "draw one at random", so the oracle gets
    `seed + 1`: every `seed >= 0` gives a fixed sequence of trials.
    """
    return GeoTuner(
        hypermodel,
        objective=keras_tuner.Objective(OBJECTIVE, direction="max"),
        max_trials=max_trials,
        seed=seed + 1,
        max_retries_per_trial=0,
        max_consecutive_failed_trials=max_failures,
        directory=tuning_dir,
        project_name=PROJECT_NAME,
        overwrite=overwrite,
    )


def search(
    config,
    run_dir,
    *,
    phase="finetune",
    max_trials=30,
    epochs=10,
    overwrite=False,
    max_failures=3,
    max_examples=None,
    verbose="auto",
):
    """Runs (or resumes) the random search and writes its report.

    Args:
        config: `TrainConfig` giving dataset, data_dir, weights, image_size,
            flip, tau_km, seed, backbone, finetune_stages and class_weight
            (the tuned fields are ignored).
        run_dir: Run directory; everything goes to `run_dir/tuning/`.
        phase: "finetune" (the paper's search) or "frozen".
        max_trials: Trials in total, finished ones included (resume).
        epochs: Epochs per trial.
        overwrite: Delete an existing search in `run_dir/tuning` first.
        max_failures: Stop after this many failed trials in a row.
        max_examples: Use only the first N train and validation examples.
        verbose: Passed to `model.fit` and KerasTuner's display.

    Returns:
        The best hyperparameters (dict), or None for a distributed worker.

    Raises:
        UserError: bad arguments, or no trial completed.
    """
    if max_trials < 1 or epochs < 1:
        raise UserError(
            f"`max_trials` and `epochs` must be >= 1. Received: "
            f"max_trials={max_trials}, epochs={epochs}"
        )
    weights = str(config.weights)
    if weights.lower() not in ("imagenet", "none") and not os.path.isfile(weights):
        raise UserError(
            f"--weights file not found: {weights}; pass an existing {config.backbone} "
            "no-top .h5, imagenet or none"
        )
    role = distributed_role()
    tuning_dir = os.path.join(run_dir, "tuning")
    overwrite = overwrite and role != "worker"  # Only the chief may delete.
    settings = {
        **{name: getattr(config, name) for name in _FIXED_FIELDS},
        "phase": phase,
        "epochs": epochs,
        "max_examples": max_examples,
    }
    _check_search_config(tuning_dir, settings, overwrite, role)
    if overwrite:
        tuning_report.remove_reports(tuning_dir)
    enable_memory_growth()
    train, val, class_names = _load_data(config, max_examples)
    cache_dir = os.path.join(tuning_dir, "features") if phase == "frozen" else None
    hypermodel = GeoHyperModel(
        class_names,
        phase=phase,
        feature_cache_dir=cache_dir,
        **{name: getattr(config, name) for name in _HYPERMODEL_FIELDS},
    )
    tuner = make_tuner(
        hypermodel,
        tuning_dir,
        max_trials=max_trials,
        seed=config.seed,
        overwrite=overwrite,
        max_failures=max_failures,
    )
    class_weight = _class_weight(config, len(class_names), max_examples)
    best = run_tuner(
        tuner, train, validation_data=val, epochs=epochs, verbose=verbose, class_weight=class_weight
    )
    return None if role == "worker" else best


def run_tuner(tuner, *fit_args, **fit_kwargs):
    """Runs `tuner.search` and writes the report beside its project.

    Returns:
        The best hyperparameters, or None on a distributed worker (the chief
        writes the report).

    Raises:
        UserError: the oracle's `max_consecutive_failed_trials` trials failed
            in a row, or no trial completed.
    """
    tuning_dir = os.path.dirname(tuner.project_dir)
    try:
        tuner.search(*fit_args, **fit_kwargs)
    except Exception as error:  # RuntimeError, or a gRPC error on a worker.
        if "consecutive failures" not in str(error):
            raise
        if distributed_role() != "worker":
            tuning_report.write_report(tuning_dir)
        raise UserError(_failures_message(error, tuning_dir)) from error
    if distributed_role() == "worker":
        return None
    return _finish(tuning_dir)


def _failures_message(error, tuning_dir):
    text = str(error)
    limit = re.search(r"limit of (\d+)", text)
    message = f"{limit.group(1) if limit else 'Too many'} trials failed in a row"
    if isinstance(error, RuntimeError) and "\n" in text.strip():
        message += f" (last: {tuning_report.summarize_error(text.split(chr(10), 1)[1])})"
    where = os.path.join(tuning_dir, "trials.csv")
    return f"{message}; search stopped. Reasons in {where} (on the chief)"


def _finish(tuning_dir):
    best = tuning_report.write_report(tuning_dir)
    if best is None:
        raise UserError(f"no trial completed; reasons in {os.path.join(tuning_dir, 'trials.csv')}")
    return best
