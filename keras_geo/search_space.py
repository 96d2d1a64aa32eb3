"""The hyperparameter search of `keras-geo tune`, written once.

The paper sampled batch size, learning rate, the loss weight alpha and weight
decay at random; it gives no ranges. Each tuned name is a `TrainConfig`
field, and its default is that field's default (the authors' code values),
so a trial's values apply with `config.replace(**values)` and `best.json`
feeds `keras-geo train --hparams` as it is. Every other `TrainConfig` field
but the epochs (`TRIAL_FIELDS`) stays fixed for a whole search; the
`Runtime` (data dir, strategy...) is no part of a search.

| name          | type             | values (default = TrainConfig's, marked *) |
|---------------|------------------|--------------------------------------------|
| batch_size    | Int, step 4      | 16, 20, ..., 180*, ..., 256                |
| learning_rate | Choice (log)     | 1e-5 3e-5 1e-4 3e-4 1e-3* 3e-3 1e-2        |
| weight_decay  | Choice           | 0 1e-5 3e-5 1e-4* 3e-4 1e-3                |
| alpha         | Float, step 0.25 | 0, 0.25, ..., 2.5*, ..., 5                 |

The table is checked against `SPACE` by `tests/test_tuning.py`.

A search maximises one of `OBJECTIVES` at each trial's best epoch
(`keras-geo tune --objective`): `val_accuracy`, the paper's and the default,
or `val_balanced_accuracy`, which a model answering the majority country
cannot win.
"""

import dataclasses

from keras_geo.config import PHASES, TrainConfig, epochs_field


@dataclasses.dataclass(frozen=True)
class Int:
    low: int
    high: int
    step: int


@dataclasses.dataclass(frozen=True)
class Float:
    low: float
    high: float
    step: float


@dataclasses.dataclass(frozen=True)
class Choice:
    values: tuple


SPACE = {
    "batch_size": Int(16, 256, 4),  # 180 = 16 + 41 * 4
    "learning_rate": Choice((1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2)),
    "weight_decay": Choice((0.0, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3)),
    "alpha": Float(0.0, 5.0, 0.25),
}
HYPERPARAMETERS = tuple(SPACE)
# The recipe fields each trial sets: the tuned ones, and the epochs of its
# phases (`keras-geo tune --phase/--epochs`). A search fixes every other one.
TRIAL_FIELDS = (*HYPERPARAMETERS, *map(epochs_field, PHASES))
DEFAULTS = {name: getattr(TrainConfig(), name) for name in SPACE}

# What a search maximises (`keras-geo tune --objective`), each a metric of
# `model.compile_model` at the best epoch. Not val_loss: alpha rescales the loss.
OBJECTIVES = (
    "val_accuracy",  # The paper's.
    "val_balanced_accuracy",  # Mean per-country recall: the majority country counts 1/C.
)
OBJECTIVE = OBJECTIVES[0]  # The default.
METRICS = (*OBJECTIVES, "val_top5_accuracy", "val_mean_km")  # Columns of trials.csv.
# Whether KerasTuner should record each metric a trial logs (`model.training_metrics`
# and the loss, with or without "val_") as better when higher ("max") or lower ("min").
# Left to guess, KerasTuner records names it does not know, such as
# "val_balanced_accuracy" and "val_top5_accuracy", as "min".
DIRECTIONS = {
    "loss": "min",
    "accuracy": "max",
    "balanced_accuracy": "max",
    "top5_accuracy": "max",
    "mean_km": "min",
}

# Files under RUN_DIR/tuning/.
PROJECT_NAME = "search"  # KerasTuner's project folder.
SIDE_CAR = "keras_geo.json"  # Per-trial record, in each trial_*/ folder.
CONFIG_FILE = "search_config.json"  # The fixed settings a resume must match.
TRIALS_FILE = "trials.csv"
BEST_FILE = "best.json"
PLOT_FILE = "search.png"
REPORT_FILES = (TRIALS_FILE, BEST_FILE, PLOT_FILE, CONFIG_FILE)


def declare(hp):
    """Declares `SPACE` on a `keras_tuner.HyperParameters` and returns the values.

    Returns:
        A dict of `TrainConfig` field overrides, e.g. the defaults for a
        fresh `HyperParameters()`.
    """
    values = {}
    for name, spec in SPACE.items():
        default = DEFAULTS[name]
        if isinstance(spec, Choice):
            values[name] = hp.Choice(name, spec.values, default=default)
        else:
            declare_range = hp.Int if isinstance(spec, Int) else hp.Float
            values[name] = declare_range(name, spec.low, spec.high, step=spec.step, default=default)
    return values


def direction(metric):
    """Whether KerasTuner should maximise or minimise a logged metric: "max", "min" or None.

    Example: `direction("val_top5_accuracy")` is "max"; None for a metric not ours.
    """
    return DIRECTIONS.get(metric.removeprefix("val_"))


def bounds(name):
    """The (smallest, largest) value of hyperparameter `name`."""
    spec = SPACE[name]
    values = spec.values if isinstance(spec, Choice) else (spec.low, spec.high)
    return min(values), max(values)
