"""The paper's runs as reproducible configs (installed as `keras_geo.experiments`).

Each module defines `config() -> keras_geo.config.TrainConfig` and states in
its docstring the exact command and the result the paper reported. Use
`get(name)` (or `keras-geo train --experiment NAME`) to load one.
"""

import importlib

from keras_geo.errors import UserError

NAMES = (
    "feature_extraction",
    "finetune_crossentropy",
    "finetune_haversine",
    "demo",
    "modern",
    "scratch_top20",
)


def get(name):
    """Returns the `TrainConfig` of experiment `name`.

    Raises:
        UserError: `name` is not one of `NAMES`.
    """
    if name not in NAMES:
        raise UserError(f"Unknown experiment {name!r}. Known experiments: {', '.join(NAMES)}")
    return importlib.import_module(f"{__name__}.{name}").config()
