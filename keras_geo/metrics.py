"""Distance metrics: great-circle km between predicted and true country.

`MeanGreatCircleError` (`mean_km`) and `BalancedAccuracy` (mean per-country
recall) are Keras metrics used during training;
the NumPy helpers serve evaluation: `distances_km` per example,
`geoguessr_score` (the score research code uses for GeoGuessr,
`5000 * exp(-d / 1492.7)`) and `distance_summary`.
"""

import keras
import numpy as np
from keras import ops

from keras_geo import countries
from keras_geo.losses import class_distance_matrix

GEOGUESSR_SCALE_KM = 1492.7


def great_circle_error_km(y_true, y_pred, distances):
    """Per-example km between the argmax class of `y_pred` and `y_true`.

    Args:
        y_true: Integer class ids, `[B]` or `[B, 1]`.
        y_pred: Scores (probabilities or logits), `[B, C]`.
        distances: `[C, C]` km matrix.

    Returns:
        Float32 tensor `[B]`.
    """
    distances = ops.cast(ops.convert_to_tensor(distances), "float32")
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(ops.convert_to_tensor(y_true), "int32")
    if len(y_true.shape) == len(y_pred.shape):
        y_true = ops.squeeze(y_true, axis=-1)
    predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
    num_classes = distances.shape[-1]
    return ops.take(ops.reshape(distances, [-1]), y_true * num_classes + predicted)


@keras.saving.register_keras_serializable(package="keras_geo")
class MeanGreatCircleError(keras.metrics.MeanMetricWrapper):
    """Mean great-circle km between the predicted (argmax) and true country.

    Sparse integer labels. 0 when every prediction is right; lower is better.

    Args:
        class_names: Country names in label order (see `keras_geo.countries`).
        name: Metric name.
        dtype: Dtype of the result.

    Example (France-Japan is 9889 km with the countryinfo points):

    >>> m = MeanGreatCircleError(["France", "Germany", "Japan"])
    >>> m.update_state([0, 0], [[0.9, 0.1, 0.0], [0.1, 0.2, 0.7]])
    >>> round(float(m.result()))  # (0 + 9889) / 2
    4945
    """

    def __init__(self, class_names, name="mean_km", dtype=None):
        distances = class_distance_matrix(class_names)
        super().__init__(fn=great_circle_error_km, name=name, dtype=dtype, distances=distances)
        self.class_names = list(class_names)
        self._direction = "down"

    def get_config(self):
        return {"class_names": self.class_names, "name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="keras_geo")
class BalancedAccuracy(keras.metrics.Metric):
    """Mean per-class recall (sparse labels): accuracy with every country weighted equally.

    Classes absent from the labels seen so far do not count. With 30.5% of
    top20 in one country, plain accuracy rewards always answering it; this
    metric gives that strategy 1 / C.

    Args:
        num_classes: Number of classes.
        name: Metric name.
        dtype: Dtype of the result.

    Example:

    >>> m = BalancedAccuracy(2)
    >>> m.update_state([0, 0, 0, 1], [[.9, .1], [.8, .2], [.7, .3], [.6, .4]])
    >>> float(m.result())  # (3/3 + 0/1) / 2
    0.5
    """

    def __init__(self, num_classes, name="balanced_accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.num_classes = int(num_classes)
        self.correct = self.add_variable((self.num_classes,), "zeros", name="correct")
        self.support = self.add_variable((self.num_classes,), "zeros", name="support")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.reshape(ops.cast(ops.convert_to_tensor(y_true), "int32"), [-1])
        hit = ops.cast(ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), y_true), "float32")
        one_hot = ops.one_hot(y_true, self.num_classes, dtype="float32")
        self.correct.assign_add(ops.cast(ops.sum(one_hot * hit[:, None], axis=0), self.dtype))
        self.support.assign_add(ops.cast(ops.sum(one_hot, axis=0), self.dtype))

    def result(self):
        seen = ops.cast(self.support > 0, self.dtype)
        recall = ops.divide_no_nan(self.correct, self.support)
        return ops.divide_no_nan(ops.sum(recall * seen), ops.sum(seen))

    def reset_state(self):
        self.correct.assign(ops.zeros_like(self.correct))
        self.support.assign(ops.zeros_like(self.support))

    def get_config(self):
        return {"num_classes": self.num_classes, "name": self.name, "dtype": self.dtype}


def distances_km(y_true, y_pred_labels, class_names, *, override_csv=None):
    """Great-circle km per example between predicted and true labels (NumPy).

    Args:
        y_true: Integer class ids, shape `[N]`.
        y_pred_labels: Predicted class ids (already argmax-ed), shape `[N]`.
        class_names: Country names in label order.
        override_csv: Optional countries CSV (see `keras_geo.countries`).

    Returns:
        Float64 array `[N]`; e.g. `[0.0, 9889.3]` for true `[0, 0]` and
        predicted `[0, 2]` with `["France", "Germany", "Japan"]`.
    """
    matrix = countries.distance_matrix_km(class_names, override_csv=override_csv)
    y_true = np.asarray(y_true, dtype="int64").reshape(-1)
    y_pred_labels = np.asarray(y_pred_labels, dtype="int64").reshape(-1)
    return matrix[y_true, y_pred_labels]


def geoguessr_score(distance_km):
    """GeoGuessr points for an error of `distance_km`: `5000 * exp(-d / 1492.7)`.

    Works on scalars and arrays. 5000 at 0 km, 1839 at 1492.7 km (5000 / e),
    66 at 6,465 km... Example: `geoguessr_score(0) == 5000.0`.
    """
    return 5000.0 * np.exp(-np.asarray(distance_km, dtype="float64") / GEOGUESSR_SCALE_KM)


def distance_summary(distance_km):
    """Returns `{"mean_km", "median_km", "geoguessr_score"}` (floats).

    `geoguessr_score` is the mean per-example score. Example: distances
    `[0, 1492.7]` give mean 746.35, median 746.35, score
    `(5000 + 5000 / e) / 2 = 3419.7`. Empty input gives NaNs.
    """
    km = np.asarray(distance_km, dtype="float64").reshape(-1)
    if km.size == 0:
        return {
            "mean_km": float("nan"),
            "median_km": float("nan"),
            "geoguessr_score": float("nan"),
        }
    return {
        "mean_km": float(km.mean()),
        "median_km": float(np.median(km)),
        "geoguessr_score": float(geoguessr_score(km).mean()),
    }
