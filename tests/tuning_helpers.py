"""Shared by the tuning tests: the search space of `keras-geo tune` on a tiny model.

Not a test module: `test_tuning.py`, `test_tuning_keras_tuner.py` and the
processes `test_tuning_distributed.py` starts import it.
"""

import keras
import keras_tuner

from keras_geo import search_space


class ToyHyperModel(keras_tuner.HyperModel):
    """Same space as `GeoHyperModel` on a tiny dense model; fails on request.

    Args:
        metrics: Makes the compiled metrics, fresh for each model (default:
            accuracy).
        fail: Called with each trial's values before it fits; raise to fail it.
    """

    def __init__(self, fail=lambda values: None, *, metrics=lambda: ["accuracy"]):
        super().__init__()
        self.fail = fail
        self.metrics = metrics
        self.fitted = []

    def declare_hyperparameters(self, hp):
        search_space.declare(hp)

    def build(self, hp):
        values = search_space.declare(hp)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, "softmax")])
        model.compile(
            optimizer=keras.optimizers.AdamW(values["learning_rate"]),
            loss="sparse_categorical_crossentropy",
            metrics=self.metrics(),
            run_eagerly=True,  # Tracing would cost more than these steps.
        )
        return model

    def fit(self, hp, model, x, y, **kwargs):
        values = search_space.declare(hp)
        self.fitted.append(values)
        self.fail(values)
        return model.fit(x, y, batch_size=values["batch_size"], **kwargs)
