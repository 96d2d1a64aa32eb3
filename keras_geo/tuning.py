"""Random search of `keras_geo.search_space` with KerasTuner.

The paper sampled batch size, learning rate, the loss weight alpha and weight
decay at random for 30 trials of 10 epochs, then trained the best setting for
40 epochs. `search` runs that search with KerasTuner's random search; each
trial trains the model `keras-geo train` would for its values (see
`GeoHyperModel`). It writes, under `RUN_DIR/tuning/` (file names in
`keras_geo.search_space`):

- `search/`: KerasTuner's own project (oracle and one `trial_*/` per trial);
  rerunning the same command resumes from it, no finished trial runs again.
- `search_config.json`: the fixed settings a resume must match (the
  objective among them).
- `trials.csv`, `best.json` (TrainConfig field names, for
  `keras-geo train --hparams`), `search.png` (see `keras_geo.tuning_report`).

Distributed search uses KerasTuner's chief/worker mode unchanged: set
`KERASTUNER_TUNER_ID` (`chief`, `tuner0`, `tuner1`, ...),
`KERASTUNER_ORACLE_IP` and `KERASTUNER_ORACLE_PORT` and run the same
`keras-geo tune` command in every process, all sharing one `--run-dir`.
"""

import contextlib
import copy
import json
import math
import os
import socket
import time

import keras
import keras_tuner
import tensorflow as tf

from keras_geo import config as config_lib
from keras_geo import (
    distribute,
    features,
    locks,
    paths,
    runs,
    search_space,
    settings,
    tuning_report,
)
from keras_geo import model as model_lib
from keras_geo import phase as phase_lib
from keras_geo.compat import keras_tuner as compat_kt
from keras_geo.config import PHASES, Runtime, TrainConfig, epochs_field
from keras_geo.errors import UserError

CHIEF_TIMEOUT_ENV = settings.CHIEF_TIMEOUT_ENV  # Seconds a worker waits for its chief.


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


class GeoHyperModel(keras_tuner.HyperModel):
    """The model `keras-geo train` builds, with a trial's values applied to its config.

    `build(hp)` declares the space of `keras_geo.search_space` and returns
    `phase.build_phase_model(config.replace(**values), phase, ...,
    steps_per_epoch=...)`: the model, loss, optimizer, learning-rate
    schedule and dtype policy a training run of those values compiles.
    `fit(hp, model, ...)` batches the unbatched `(image, label)` datasets
    with the trial's `batch_size` (Keras ignores `batch_size=` for a
    `tf.data.Dataset`).

    Args:
        config: The `TrainConfig` of the fixed settings (the tuned fields are
            overridden by each trial). Its `epochs_<phase>` is the epochs of
            a trial: a schedule or warm-up spans them, as in `train`.
        class_names: Label names in label order (the classes of the head).
        runtime: The `Runtime` trials run with (input service, precision);
            None: `Runtime()`.
        phase: "finetune" (conv5_* trainable, the paper's search) or
            "frozen" (head only).
        feature_cache_dir: Frozen phase with `config.cache_features`: where
            backbone features are cached, so every trial trains the head on
            features computed once.
        train_examples: Examples in a trial's training epoch; with the
            trial's batch size they give the steps of an epoch a schedule or
            warm-up needs (required for those).
    """

    def __init__(
        self,
        config,
        class_names,
        *,
        runtime=None,
        phase="finetune",
        feature_cache_dir=None,
        train_examples=None,
    ):
        super().__init__(name="geo")
        if phase not in PHASES:
            raise UserError(f"`phase` must be one of {PHASES}. Received: phase={phase!r}")
        scheduled = config.lr_schedule != "constant" or config.warmup_epochs > 0
        if scheduled and not (train_examples and train_examples > 0):
            raise UserError(
                "`train_examples` must be > 0 with a learning-rate schedule or warm-up. "
                f"Received: train_examples={train_examples!r}"
            )
        self.config = config
        self.runtime = runtime or Runtime()
        self.class_names = list(class_names)
        self.phase = phase
        self.feature_cache_dir = feature_cache_dir
        self.train_examples = train_examples

    def declare_hyperparameters(self, hp):
        search_space.declare(hp)

    def trial_config(self, hp):
        """The `TrainConfig` of the trial whose hyperparameters are `hp`."""
        return self.config.replace(**search_space.declare(hp))

    def steps_per_epoch(self, config):
        """Batches in a training epoch of `config`'s batch size (None: not known)."""
        if not self.train_examples:
            return None
        return math.ceil(self.train_examples / config.batch_size)

    def build(self, hp):
        config = self.trial_config(hp)
        keras.utils.set_random_seed(config.seed)
        steps = self.steps_per_epoch(config)
        try:
            return phase_lib.build_phase_model(
                config, self.phase, self.class_names, runtime=self.runtime, steps_per_epoch=steps
            )
        except UserError as error:  # Same for every trial: stop the search.
            raise _FatalUserError(str(error)) from error

    def fit(self, hp, model, x, *args, validation_data=None, callbacks=None, **kwargs):
        """Batches the unbatched datasets with the trial's batch size and trains."""
        config = self.trial_config(hp)
        callbacks = [*(callbacks or []), FailOnNaNLoss()]
        if self.phase == "frozen" and config.cache_features and self.feature_cache_dir:
            return self._fit_head(model, x, validation_data, config, callbacks, **kwargs)
        try:
            train, val = phase_lib.image_datasets(config, x, validation_data, runtime=self.runtime)
        except UserError as error:  # E.g. no dispatcher at --data-service: same for every trial.
            raise _FatalUserError(str(error)) from error
        # `train` shuffles itself; Keras warns that it ignores shuffle=True.
        kwargs.setdefault("shuffle", False)
        return model.fit(train, *args, validation_data=val, callbacks=callbacks, **kwargs)

    def _fit_head(self, model, train, val, config, callbacks, **kwargs):
        return features.fit_head_on_features(
            model,
            train,
            val,
            epochs=kwargs.pop("epochs", 1),
            batch_size=config.batch_size,
            image_size=config.image_size,
            callbacks=callbacks,
            cache_dir=self.feature_cache_dir,
            dataset_key=config.dataset,
            **kwargs,
        )


class GeoOracle(keras_tuner.oracles.RandomSearchOracle):
    """`RandomSearchOracle` that records every metric with its direction.

    KerasTuner guesses a metric's direction from its name and records the
    ones it does not know as "min" in `trial.json`; this oracle registers
    each metric of `search_space.DIRECTIONS` with its own first. The chief
    of a distributed search runs it, so workers' trials are recorded alike.
    """

    @keras_tuner.synchronized
    def update_trial(self, trial_id, metrics, step=0):
        tracker = self.trials[trial_id].metrics
        for name in metrics:
            direction = search_space.direction(name)
            if direction is not None and not tracker.exists(name):
                tracker.register(name, direction=direction)
        return super().update_trial(trial_id, metrics, step=step)


class GeoTuner(compat_kt.DeclaredSpace, keras_tuner.Tuner):
    """KerasTuner's `RandomSearch` (a `Tuner` with `GeoOracle`) that records each trial.

    Differences from `RandomSearch`: metric directions are recorded right
    (`GeoOracle`), the initial space comes from `declare_hyperparameters`
    alone (no throw-away ResNet50 build), no per-trial weight checkpoint is
    written (about 100 MB each for ResNet50; the final model is retrained
    from `best.json`), each trial leaves a `keras_geo.json` record (status,
    reason of a failure, wall time) in its trial directory, which also works
    for workers of a distributed search, and one line is printed per trial,
    numbered as KerasTuner numbers it ("Trial 3" is `trial_2`). The project
    stays KerasTuner's own: `keras_tuner.RandomSearch(..., overwrite=False)`
    reloads it (docs/tuning.md, "Reload with KerasTuner alone").

    A trial runs KerasTuner's public path (`run_trial`'s own example:
    `hypermodel.build(hp)`, then `hypermodel.fit(hp, model, ...)`, the build
    under the tuner's distribution strategy). The initial space comes from
    `compat.keras_tuner.DeclaredSpace`, which overrides a private method.

    Args:
        hypermodel: A `GeoHyperModel`.
        objective, max_trials, seed, max_retries_per_trial,
            max_consecutive_failed_trials: as `keras_tuner.RandomSearch`.
        **kwargs: passed on to `keras_tuner.Tuner` (directory, project_name,
            overwrite, distribution_strategy...).
    """

    last_trial_error = None  # "Type: reason" of the running trial's exception, if it raised.

    def __init__(
        self,
        hypermodel,
        *,
        objective,
        max_trials,
        seed=None,
        max_retries_per_trial=0,
        max_consecutive_failed_trials=3,
        **kwargs,
    ):
        oracle = GeoOracle(
            objective=objective,
            max_trials=max_trials,
            seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
        )
        super().__init__(oracle, hypermodel, **kwargs)

    def run_trial(self, trial, *args, **kwargs):
        # Upstream's run_trial adds a `SaveBestEpoch` weight checkpoint per trial.
        hp = trial.hyperparameters
        callbacks = copy.deepcopy(kwargs.pop("callbacks", None) or [])
        keras.backend.clear_session()  # As upstream: no state of earlier trials' models.
        strategy = self.distribution_strategy
        try:
            with strategy.scope() if strategy else contextlib.nullcontext():
                model = self.hypermodel.build(hp)
            return self.hypermodel.fit(hp, model, *args, callbacks=callbacks, **kwargs)
        except Exception as error:  # KerasTuner keeps only the traceback's text: the type, here.
            self.last_trial_error = tuning_report.describe_error(error)
            raise

    def on_trial_begin(self, trial):
        self._trial_start = time.monotonic()
        self.last_trial_error = None
        super().on_trial_begin(trial)

    def on_trial_end(self, trial):
        wall_time = time.monotonic() - getattr(self, "_trial_start", time.monotonic())
        record = {
            "trial_id": trial.trial_id,
            "status": trial.status,
            "message": self.last_trial_error or tuning_report.summarize_error(trial.message),
            "wall_time_s": round(wall_time, 1),
            "tuner_id": self.tuner_id,
        }
        paths.write_json(
            os.path.join(self.get_trial_dir(trial.trial_id), search_space.SIDE_CAR),
            record,
            sort_keys=False,
        )
        super().on_trial_end(trial)  # The oracle scores the trial here.
        self._print_progress(trial, record)
        if distributed_role() != "worker":
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
            objective=self.oracle.objective.name,
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
    chief_address()  # A bad port fails now, not as a hang or a traceback.
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


def chief_address():
    """`(ip, port)` of the chief's oracle from KerasTuner's env vars."""
    port = os.environ["KERASTUNER_ORACLE_PORT"].strip()
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(
            f"KERASTUNER_ORACLE_PORT must be a port number, 1-65535. Received: {port!r}"
        )
    return os.environ["KERASTUNER_ORACLE_IP"], int(port)


def wait_for_chief(timeout_s=None):
    """Returns once the chief's oracle accepts connections (a worker, before `search`).

    KerasTuner's worker would otherwise wait for an unreachable chief forever,
    silently.

    Args:
        timeout_s: give up after this many seconds; default `settings.chief_timeout()`.

    Raises:
        UserError: nothing answered at the chief's address in time.
    """
    ip, port = chief_address()
    timeout_s = settings.chief_timeout() if timeout_s is None else timeout_s
    print(
        f"worker: waiting for the KerasTuner chief at {ip}:{port} "
        f"(up to {timeout_s:g} s; {CHIEF_TIMEOUT_ENV} sets it)",
        flush=True,
    )
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        try:
            with socket.create_connection((ip, port), timeout=max(0.1, min(5.0, remaining))):
                return
        except OSError as error:
            reason = error.strerror or str(error) or type(error).__name__
        if remaining <= 0:
            raise UserError(
                f"no KerasTuner chief answered at {ip}:{port} within {timeout_s:g} s "
                f"({reason}): start the chief (KERASTUNER_TUNER_ID=chief) first, check "
                f"KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT, or raise {CHIEF_TIMEOUT_ENV}."
            )
        time.sleep(min(1.0, max(remaining, 0.0)))


def enable_memory_growth():
    """Lets TensorFlow grow GPU memory as needed instead of grabbing it all."""
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # The GPU was initialised already.
            pass


def _check_search_config(tuning_dir, settings, overwrite, role):
    """Refuses to resume a search made with different fixed settings; writes `settings`.

    `settings` is the dict of `search_settings`; compared with
    `runs.config_diff` field by field. A search in which no trial ended (its
    first command failed before, e.g. on ImageNet weights it could not
    download) takes the new settings and starts afresh, as `train` does with
    a run directory in which nothing was trained.

    Returns:
        Whether the search starts afresh: `overwrite`, or such a search.
    """
    path = os.path.join(tuning_dir, search_space.CONFIG_FILE)
    if os.path.exists(path) and not overwrite:
        changed = runs.config_diff(_stored_settings(path), settings)
        if changed and (role == "worker" or trials_ended(tuning_dir)):
            raise UserError(
                f"{tuning_dir} holds a search with other settings ({', '.join(changed)}); "
                "pass the same flags to resume, --overwrite to start afresh, "
                "or another --run-dir."
            )
        overwrite = bool(changed)
    if role != "worker":
        if overwrite:  # Before writing the new settings: they are one of the reports.
            tuning_report.remove_reports(tuning_dir)
        paths.write_json(path, settings)
    return overwrite


def trials_ended(tuning_dir):
    """True once a trial of the search in `tuning_dir` has ended (completed or failed)."""
    project = os.path.join(tuning_dir, search_space.PROJECT_NAME)
    if not os.path.isdir(project):
        return False
    return any(
        os.path.isfile(os.path.join(project, name, search_space.SIDE_CAR))
        for name in os.listdir(project)
        if name.startswith("trial_")
    )


def search_settings(
    config, *, phase=None, epochs=None, max_examples=None, objective=search_space.OBJECTIVE
):
    """The fixed settings of a search, as stored in `search_config.json`.

    The recipe less the fields a trial sets (`search_space.TRIAL_FIELDS`),
    and how the search runs: the objective is one of them, though not a
    `TrainConfig` field (it chooses among recipes, it is not part of one).
    """
    fixed = {k: v for k, v in config.to_dict().items() if k not in search_space.TRIAL_FIELDS}
    extras = dict(phase=phase, epochs=epochs, max_examples=max_examples, objective=objective)
    return {**fixed, **extras}


def _stored_settings(path):
    """The `search_settings` stored at `path`.

    A field the file lacks had its default then (older files lack
    `objective`: their searches maximised the default); files written before
    the `Runtime` split also hold its fields, which a search does not fix.
    """
    with open(path) as f:
        stored = json.load(f)
    runtime = config_lib.field_names(Runtime)
    fixed = {k: v for k, v in stored.items() if k not in runtime}
    return {**search_settings(TrainConfig()), **fixed}


def make_tuner(
    hypermodel,
    tuning_dir,
    *,
    max_trials,
    seed,
    overwrite,
    max_failures=3,
    strategy="default",
    objective=search_space.OBJECTIVE,
):
    """Returns the `GeoTuner` of the project `tuning_dir/search`.

    KerasTuner treats seed 0 as "draw one at random", so the oracle gets
    `seed + 1`: every `seed >= 0` gives a fixed sequence of trials. Trials
    build and train under `distribute.make_strategy(strategy)`, as `train`.
    The oracle maximises `objective` (one of `search_space.OBJECTIVES`).
    """
    return GeoTuner(
        hypermodel,
        objective=keras_tuner.Objective(objective, direction="max"),
        max_trials=max_trials,
        seed=seed + 1,
        max_retries_per_trial=0,
        max_consecutive_failed_trials=max_failures,
        directory=tuning_dir,
        project_name=search_space.PROJECT_NAME,
        overwrite=overwrite,
        distribution_strategy=None if strategy == "default" else distribute.make_strategy(strategy),
    )


def search(
    config,
    run_dir,
    *,
    runtime=None,
    phase="finetune",
    max_trials=30,
    epochs=10,
    overwrite=False,
    max_failures=3,
    max_examples=None,
    objective=search_space.OBJECTIVE,
    verbose="auto",
):
    """Runs (or resumes) the random search and writes its report.

    Args:
        config: The `TrainConfig` of the fixed settings; each trial
            overrides its `search_space.HYPERPARAMETERS`, the epochs come
            from `phase` and `epochs`.
        run_dir: Run directory; everything goes to `run_dir/tuning/`.
        runtime: The `Runtime` trials run with (None: `Runtime()`); a
            resumed search may run with another.
        phase: "finetune" (the paper's search) or "frozen".
        max_trials: Trials in total, finished ones included (resume).
        epochs: Epochs per trial.
        overwrite: Delete an existing search in `run_dir/tuning` first.
        max_failures: Stop after this many failed trials in a row.
        max_examples: Use only the first N train and validation examples.
        objective: What the search maximises, one of
            `search_space.OBJECTIVES` (default the paper's `val_accuracy`).
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
    if objective not in search_space.OBJECTIVES:
        raise UserError(
            f"`objective` must be one of {', '.join(search_space.OBJECTIVES)}. "
            f"Received: objective={objective!r}"
        )
    model_lib.check_weights(config.weights, config.backbone)  # Before any trial.
    runtime = runtime or Runtime()
    role = distributed_role()
    # A distributed search shares its run directory by design (chief and workers).
    writer = locks.exclusive(run_dir, "--run-dir") if role is None else contextlib.nullcontext()
    with writer:
        paths.check_writable(run_dir, "--run-dir")
        if role == "worker":
            wait_for_chief()
        tuning_dir = os.path.join(run_dir, "tuning")
        overwrite = overwrite and role != "worker"  # Only the chief may delete.
        settings = search_settings(
            config, phase=phase, epochs=epochs, max_examples=max_examples, objective=objective
        )
        overwrite = _check_search_config(tuning_dir, settings, overwrite, role)
        enable_memory_growth()
        data = phase_lib.load_data(config, runtime, max_examples=max_examples)
        cache_dir = os.path.join(tuning_dir, "features") if phase == "frozen" else None
        hypermodel = GeoHyperModel(
            config.replace(**{epochs_field(phase): epochs}),  # A schedule spans a trial's epochs.
            data.class_names,
            runtime=runtime,
            phase=phase,
            feature_cache_dir=cache_dir,
            train_examples=int(data.train.cardinality()),
        )
        tuner = make_tuner(
            hypermodel,
            tuning_dir,
            max_trials=max_trials,
            seed=config.seed,
            overwrite=overwrite,
            max_failures=max_failures,
            strategy=runtime.strategy,
            objective=objective,
        )
        class_weight = phase_lib.class_weight(config, runtime, len(data.class_names), max_examples)
        best = run_tuner(
            tuner,
            data.train,
            validation_data=data.validation,
            epochs=epochs,
            verbose=verbose,
            class_weight=class_weight,
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
    objective = tuner.oracle.objective.name
    try:
        tuner.search(*fit_args, **fit_kwargs)
    except Exception as error:  # RuntimeError, or a gRPC error on a worker.
        if compat_kt.consecutive_failures_limit(error) is None:
            raise
        if distributed_role() != "worker":
            tuning_report.write_report(tuning_dir, objective)
        raise UserError(_failures_message(error, tuning_dir)) from error
    if distributed_role() == "worker":
        return None
    return _finish(tuning_dir, objective)


def _failures_message(error, tuning_dir):
    text = str(error)
    limit = compat_kt.consecutive_failures_limit(error)
    message = f"{limit or 'Too many'} trials failed in a row"
    if isinstance(error, RuntimeError) and "\n" in text.strip():
        message += f" (last: {tuning_report.summarize_error(text.split(chr(10), 1)[1])})"
    where = os.path.join(tuning_dir, search_space.TRIALS_FILE)
    return f"{message}; search stopped. Reasons in {where} (on the chief)"


def _finish(tuning_dir, objective):
    best = tuning_report.write_report(tuning_dir, objective)
    if best is None:
        raise UserError(f"no trial completed; reasons in {os.path.join(tuning_dir, 'trials.csv')}")
    return best
