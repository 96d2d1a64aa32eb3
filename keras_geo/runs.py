"""The run directory: layout, config guard, phase records, model loading.

A run directory is self-contained; everything needed to reproduce, evaluate
or export a run lives in it:

    RUN_DIR/
      config.json            the recipe (TrainConfig) and its runtime (written first)
      class_names.json       label order of the model's outputs
      history/<phase>.csv    per-epoch metrics (CSVLogger), phases frozen, finetune
      checkpoints/<phase>.weights.h5   best weights of the phase by val_accuracy
      backup/<phase>/        BackupAndRestore state while a phase is unfinished
      phases_done.json       finished phases: never redone on a rerun
      model.keras            final model (class names and config embedded)
      model.json             which phase's best weights model.keras holds
      metrics/<split>.json   written by `keras_geo.evaluation.evaluate`
      plots/*.png            training curves, confusion matrix, per-country accuracy

`load_model` accepts a run directory or a bare `.keras` file. Class names for
a `.keras` file: `train` embeds `keras_geo/class_names.json` (and
`keras_geo/train_config.json`, the recipe) in the archive next to Keras' own entries, which
Keras ignores on load; a `.keras` file without them (e.g. saved by hand) is
read with the `class_names.json` found in the same folder.
"""

import csv
import json
import pathlib
import zipfile

import keras

from keras_geo import config as config_lib
from keras_geo import paths, side_files
from keras_geo.compat import keras_callbacks
from keras_geo.errors import UserError, one_line

CONFIG_FILE = "config.json"
CLASS_NAMES_FILE = "class_names.json"
PHASES_DONE_FILE = "phases_done.json"
MODEL_FILE = "model.keras"
MODEL_RECORD_FILE = "model.json"
_EMBEDDED_CLASS_NAMES = "keras_geo/class_names.json"
_EMBEDDED_CONFIG = "keras_geo/train_config.json"
# What `train` writes into a run directory: `train --overwrite` deletes these.
TRAINING_OUTPUTS = (
    CONFIG_FILE,
    CLASS_NAMES_FILE,
    PHASES_DONE_FILE,
    MODEL_FILE,
    MODEL_RECORD_FILE,
    "history",
    "checkpoints",
    "backup",
    "metrics",
    "plots",
    "features",
)


def history_path(run_dir, phase):
    return pathlib.Path(run_dir) / "history" / f"{phase}.csv"


def checkpoint_path(run_dir, phase):
    return pathlib.Path(run_dir) / "checkpoints" / f"{phase}.weights.h5"


def backup_dir(run_dir, phase):
    return pathlib.Path(run_dir) / "backup" / phase


def metrics_path(run_dir, split):
    return pathlib.Path(run_dir) / "metrics" / f"{split}.json"


def plots_dir(run_dir):
    return pathlib.Path(run_dir) / "plots"


def stored_config(run_dir):
    """Returns the run directory's recipe (`TrainConfig`), or None if it has none.

    Raises:
        UserError: `config.json` is not a JSON object of valid config fields.
    """
    stored = stored_run_config(run_dir)
    return None if stored is None else stored[0]


def stored_run_config(run_dir):
    """Returns the run's `(TrainConfig, Runtime)`, or None if it has no `config.json`.

    The runtime is the one the run last ran with. Both layouts of
    `config.json` are read (`keras_geo.config.from_dict`): files written
    before the split hold one flat object of both parts' fields.

    Raises:
        UserError: `config.json` is not a JSON object of valid config fields.
    """
    path = pathlib.Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        return None
    return side_files.run_config(_read_json(path), path)


def prepare_run_dir(config, run_dir, *, runtime=None, overwrite=False):
    """Creates `run_dir` and writes `config.json`, refusing a different run.

    A run directory in which nothing was trained yet (e.g. its first command
    failed on a bad `--weights` file) takes the new config.

    Args:
        config: the requested recipe (`TrainConfig`).
        run_dir: path; created if missing.
        runtime: the `Runtime` it runs with, stored next to the recipe (a
            later command may change it); None: `Runtime()`.
        overwrite: delete the run's training outputs first (`TRAINING_OUTPUTS`;
            a search in `tuning/` and any other file are kept).

    Returns:
        The run directory as a `pathlib.Path`.

    Raises:
        UserError: as `check_run_dir`.
    """
    run_dir = check_run_dir(config, run_dir, overwrite=overwrite)
    if overwrite:
        for name in TRAINING_OUTPUTS:
            paths.remove_leftovers(run_dir, name)
    for leftover in run_dir.rglob(f"{paths.TMP_PREFIX}*") if run_dir.is_dir() else ():
        paths.remove_leftovers(leftover.parent, leftover.name)  # From a killed run.
    run_dir.mkdir(parents=True, exist_ok=True)
    config_lib.write_json(run_dir / CONFIG_FILE, config, runtime or config_lib.Runtime())
    return run_dir


def check_run_dir(config, run_dir, *, overwrite=False):
    """Raises `UserError` unless `run_dir` may hold a run of `config`; creates nothing.

    Raises:
        UserError: `run_dir` is not a writable directory, or (unless
            `overwrite`) holds a trained run whose recipe differs from
            `config` (the runtime may change).
    """
    run_dir = pathlib.Path(run_dir)
    paths.check_writable(run_dir, "--run-dir")
    previous = None if overwrite else stored_config(run_dir)
    if previous is not None and has_trained(run_dir):
        diff = config_diff(previous, config)
        if diff:
            raise UserError(
                f"Run directory {run_dir} holds a run with a different config "
                f"({'; '.join(diff)}); pass a new --run-dir, the same settings, or "
                "--overwrite to start it afresh."
            )
    return run_dir


def has_trained(run_dir):
    """True once the run has finished an epoch (history, checkpoint, backup) or a phase."""
    run_dir = pathlib.Path(run_dir)
    if (run_dir / PHASES_DONE_FILE).is_file() or (run_dir / MODEL_FILE).is_file():
        return True
    return any(
        (run_dir / folder).is_dir() and any((run_dir / folder).iterdir())
        for folder in ("history", "checkpoints", "backup")
    )


def config_diff(stored, requested):
    """Lists `"field: stored -> requested"` for the fields that differ.

    Args:
        stored: A `TrainConfig` (a recipe), or a dict of settings (a missing
            key is None).
        requested: The same kind.
    """
    old, new = (c if isinstance(c, dict) else c.to_dict() for c in (stored, requested))
    return [
        f"{name}: {old.get(name)!r} -> {new.get(name)!r}"
        for name in sorted(old | new)
        if old.get(name) != new.get(name)
    ]


def write_class_names(run_dir, class_names):
    paths.write_json(pathlib.Path(run_dir) / CLASS_NAMES_FILE, list(class_names))


def read_class_names(run_dir):
    """The run's class names (a checked list of distinct strings)."""
    path = pathlib.Path(run_dir) / CLASS_NAMES_FILE
    if not path.is_file():
        raise UserError(f"{path} is missing: is {run_dir} a keras-geo run directory?")
    return side_files.class_names(_read_json(path), path)


def phases_done(run_dir):
    """Returns `{phase: record}` for the phases a run has finished."""
    path = pathlib.Path(run_dir) / PHASES_DONE_FILE
    return _read_object(path) if path.is_file() else {}


def mark_phase_done(run_dir, phase, record):
    done = phases_done(run_dir)
    done[phase] = record
    paths.write_json(pathlib.Path(run_dir) / PHASES_DONE_FILE, done)


def write_model_record(run_dir, record):
    """Writes `model.json`: which phase's weights `model.keras` holds."""
    paths.write_json(pathlib.Path(run_dir) / MODEL_RECORD_FILE, record)


def read_model_record(run_dir):
    path = pathlib.Path(run_dir) / MODEL_RECORD_FILE
    return _read_object(path) if path.is_file() else {}


def read_history(run_dir, phase):
    """Returns the per-epoch rows of `history/<phase>.csv` as float dicts.

    A row repeated by a resumed run (same `epoch`) keeps its last value.
    """
    path = history_path(run_dir, phase)
    if not path.is_file():
        return []
    rows = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            values = {k: float(v) for k, v in row.items() if k and v not in ("", None)}
            if "epoch" in values:
                rows[int(values["epoch"])] = values
    return [rows[epoch] for epoch in sorted(rows)]


def save_model(model, path, class_names, config=None):
    """Saves `model` as `.keras` with class names (and its recipe) embedded, atomically."""
    paths.check_space(path, keras_callbacks.weights_nbytes(model))
    with paths.atomic_write(path) as tmp:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(_EMBEDDED_CLASS_NAMES, json.dumps(list(class_names)))
            if config is not None:
                archive.writestr(_EMBEDDED_CONFIG, json.dumps(config.to_dict()))


def load_model(path):
    """Loads a trained model with its class names and config, checked against each other.

    Args:
        path: a run directory (its `model.keras` is loaded) or a `.keras` file.

    Returns:
        `(model, class_names, config)`; `config` is a `TrainConfig`, or None
        for a `.keras` file that carries none.

    Raises:
        UserError: the path does not exist, holds no model, no class names
            can be found, or a side file is broken or disagrees with the model
            (`keras_geo.side_files`): one line naming the file.
    """
    # Side-effect imports, kept here next to the load that needs them: they
    # register the custom objects a saved model refers to.
    import keras_geo.losses  # noqa: F401
    import keras_geo.metrics  # noqa: F401
    import keras_geo.model  # noqa: F401

    path = pathlib.Path(path)
    model_path = path / MODEL_FILE if path.is_dir() else path
    if not model_path.is_file():
        hint = " (training not finished? rerun `keras-geo train`)" if path.is_dir() else ""
        raise UserError(f"No model at {model_path}{hint}.")
    embedded_names, embedded_config = _embedded_metadata(model_path)
    class_names, config = embedded_names, embedded_config
    names_from = f"{model_path} ({_EMBEDDED_CLASS_NAMES})"
    config_from = f"{model_path} ({_EMBEDDED_CONFIG})"
    folder = path if path.is_dir() else path.parent
    if (path.is_dir() or class_names is None) and (folder / CLASS_NAMES_FILE).is_file():
        class_names, names_from = read_class_names(folder), folder / CLASS_NAMES_FILE
        side_files.check_agreement(
            class_names, embedded_names, names_from=names_from, model_from=model_path
        )
    if path.is_dir() or config is None:
        stored = stored_config(folder)
        if stored is not None:
            _check_same_config(stored, embedded_config, folder / CONFIG_FILE, model_path)
            config, config_from = stored, folder / CONFIG_FILE
    if class_names is None:
        raise UserError(
            f"No class names for {model_path}: put its run's {CLASS_NAMES_FILE} "
            "next to it, or load the run directory."
        )
    try:
        model = keras.saving.load_model(model_path, compile=False)
    except Exception as error:  # noqa: BLE001 (a broken or foreign file is the user's to fix)
        raise UserError(f"Cannot load {model_path} as a Keras model: {one_line(error)}") from None
    side_files.check_against_model(
        model, class_names, config, names_from=names_from, config_from=config_from
    )
    return model, class_names, config


def _check_same_config(stored, embedded, config_path, model_path):
    """UserError if a run's `config.json` trains another model than `model.keras` embeds."""
    diff = [] if embedded is None else config_diff(embedded, stored)
    if diff:
        raise UserError(
            f"{config_path} disagrees with the config {model_path} was trained with "
            f"({'; '.join(diff)}): restore the file, or load {model_path} alone."
        )


def _embedded_metadata(model_path):
    """The class names and config `save_model` embedded (each None if absent), checked."""
    try:
        with zipfile.ZipFile(model_path) as archive:
            names = set(archive.namelist())
            class_names = config = None
            if _EMBEDDED_CLASS_NAMES in names:
                where = f"{model_path} ({_EMBEDDED_CLASS_NAMES})"
                value = side_files.parse_json(_read_member(archive, _EMBEDDED_CLASS_NAMES), where)
                class_names = side_files.class_names(value, where)
            if _EMBEDDED_CONFIG in names:
                where = f"{model_path} ({_EMBEDDED_CONFIG})"
                value = side_files.parse_json(_read_member(archive, _EMBEDDED_CONFIG), where)
                config = side_files.train_config(value, where)
    except zipfile.BadZipFile:
        raise UserError(f"{model_path} is not a .keras file (not a zip archive).") from None
    return class_names, config


def _read_member(archive, name):
    """A zip member's bytes, never more than `side_files.MAX_BYTES` + 1."""
    with archive.open(name) as member:
        return member.read(side_files.MAX_BYTES + 1)


def _read_json(path):
    return side_files.read_json(pathlib.Path(path))


def _read_object(path):
    value = _read_json(path)
    if not isinstance(value, dict):
        raise UserError(f"{path} must hold a JSON object: it was edited; restore it or retrain.")
    return value
