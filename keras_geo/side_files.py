"""A model's side files are input too: read within bounds, typed, checked against the model.

A run directory's `config.json` and `class_names.json`, and the copies
`train` embeds in `model.keras` (`keras_geo/train_config.json`,
`keras_geo/class_names.json`), can be truncated, edited or swapped by hand.
Each is read here with a size bound, must hold the right JSON type, and must
agree with the model it goes with: as many class names as the model has
outputs, the config's `image_size` the model's input, and a run directory's
files the same as what its `model.keras` embeds. Anything else is one
`UserError` naming the file, never a traceback or a silently mislabelled
prediction.
"""

import json

from keras_geo import config as config_lib
from keras_geo.errors import UserError, one_line

MAX_BYTES = 16 * 2**20  # A side file is a few KB; more is not one of ours.


def parse_json(data, where):
    """The JSON value of `data` (bytes); `UserError` naming `where` if it is not JSON."""
    if len(data) > MAX_BYTES:
        raise UserError(f"{where} is not a keras-geo file (over {MAX_BYTES // 2**20} MB).")
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(
            f"{where} is not valid JSON ({one_line(error)}): it was truncated or edited; "
            "restore it from the run, or retrain."
        ) from None


def read_json(path):
    """The JSON value of the file at `path` (a `pathlib.Path`), read within `MAX_BYTES`."""
    if path.stat().st_size > MAX_BYTES:
        raise UserError(f"{path} is not a keras-geo file (over {MAX_BYTES // 2**20} MB).")
    return parse_json(path.read_bytes(), path)


def class_names(value, where):
    """`value` if it is a list of distinct non-empty strings, else `UserError` naming `where`.

    >>> class_names(["France", "Japan"], "class_names.json")
    ['France', 'Japan']
    """
    if not isinstance(value, list) or not value:
        raise UserError(
            f'{where} must hold a JSON list of class names (e.g. ["France", "Japan"]). '
            f"Received: {_short(value)}"
        )
    bad = [name for name in value if not isinstance(name, str) or not name.strip()]
    if bad:
        raise UserError(
            f"{where}: every class name must be a non-empty string. Received: {bad[0]!r}"
        )
    repeated = sorted({name for name in value if value.count(name) > 1})
    if repeated:
        raise UserError(f"{where}: class names must be distinct. Received twice: {repeated[0]!r}")
    return value


def run_config(value, where):
    """The `(TrainConfig, Runtime)` of a run config object, else `UserError` naming `where`.

    Both layouts are read (`keras_geo.config.from_dict`): the two sections,
    and the flat object of files written before the split.
    """
    if not isinstance(value, dict):
        raise UserError(
            f"{where} must hold a JSON object of TrainConfig fields. Received: {_short(value)}"
        )
    try:
        return config_lib.from_dict(value)
    except (TypeError, ValueError) as error:
        raise UserError(f"{where} is not a valid run config ({one_line(error)}).") from None


def train_config(value, where):
    """The recipe (`TrainConfig`) of a run config object, else `UserError` naming `where`."""
    return run_config(value, where)[0]


def check_against_model(model, names, config, *, names_from, config_from=None):
    """Raises `UserError` unless `names` and `config` fit `model`.

    Args:
        model: the loaded Keras model.
        names: its class names (already `class_names`-checked).
        config: its `TrainConfig`, or None.
        names_from: where the names came from, for the message.
        config_from: where the config came from.
    """
    outputs = model.output_shape[-1]
    if outputs is not None and len(names) != outputs:
        raise UserError(
            f"{names_from} holds {len(names)} class names but the model has {outputs} outputs: "
            "use the class names of the run that trained it."
        )
    size = model.input_shape[1]
    if config is not None and size is not None and config.image_size != size:
        raise UserError(
            f"{config_from}: image_size is {config.image_size} but the model takes {size} px "
            "inputs: restore the run's config (it was edited) or retrain."
        )


def check_agreement(names, embedded_names, *, names_from, model_from):
    """Raises `UserError` if a run's class names differ from those its model embeds.

    The embedded names are the ones the model was trained with: a file that
    says otherwise would mislabel every prediction.
    """
    if embedded_names is None or names == embedded_names:
        return
    differ = next(
        (i for i, (a, b) in enumerate(zip(names, embedded_names, strict=False)) if a != b),
        min(len(names), len(embedded_names)),
    )
    found = names[differ] if differ < len(names) else "(none)"
    embedded = embedded_names[differ] if differ < len(embedded_names) else "(none)"
    raise UserError(
        f"{names_from} disagrees with the class names {model_from} was trained with "
        f"(class {differ}: {found!r} instead of {embedded!r}): restore the file, or load "
        f"{model_from} alone."
    )


def _short(value):
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
