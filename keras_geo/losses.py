"""Cross-entropy plus the expected great-circle distance to the true country.

The paper adds to the cross-entropy a distance between the predicted and the
true country. The authors' code took the argmax class and looked the distance
up in a NumPy table: argmax is piecewise constant and the look-up leaves the
graph, so the term only shifted the loss value and had zero gradient. Here
the term is the distance expected under the predicted distribution,
`sum_k p_k * D[y, k] / max(D)`, differentiable in every `p_k`: it moves
probability away from far countries more than from near ones.

`D` is the class-to-class great-circle distance matrix in km
(`keras_geo.countries.distance_matrix_km`, one point per country).
"""

import numbers

import keras
from keras import ops

from keras_geo import countries
from keras_geo.errors import UserError


def _check_args(alpha, tau_km):
    if not isinstance(alpha, numbers.Real) or alpha < 0:
        raise ValueError(f"`alpha` must be >= 0. Received: alpha={alpha!r}")
    if tau_km is not None and (not isinstance(tau_km, numbers.Real) or tau_km <= 0):
        raise ValueError(f"`tau_km` must be > 0 or None. Received: tau_km={tau_km!r}")


def _probabilities(y_pred, from_logits):
    """Returns (probabilities, log probabilities), float32, clipped like Keras."""
    if from_logits:
        return ops.softmax(y_pred, axis=-1), ops.log_softmax(y_pred, axis=-1)
    total = ops.sum(y_pred, axis=-1, keepdims=True)
    probs = y_pred / ops.maximum(total, keras.config.epsilon())
    clipped = ops.clip(probs, keras.config.epsilon(), 1.0 - keras.config.epsilon())
    return probs, ops.log(clipped)


def haversine_cross_entropy(
    y_true, y_pred, distances, *, alpha=2.5, from_logits=False, tau_km=None
):
    """Per-example cross-entropy + `alpha` x normalised expected distance.

    `loss = CE(q, p) + alpha * sum_k p_k * D[y, k] / max(D)`, where `q` is
    the one-hot label or, with `tau_km`, PIGEON's haversine-smoothed label
    `q_k ∝ exp(-D[y, k] / tau_km)`. Computed in float32 whatever the input
    dtype; probabilities are clipped to `[eps, 1 - eps]` inside the log.

    Args:
        y_true: Integer class ids, shape `[B]` or `[B, 1]`.
        y_pred: Probabilities (or logits if `from_logits`), shape `[B, C]`.
        distances: `[C, C]` distances in km, zero on the diagonal.
        alpha: Weight (>= 0) of the distance term; 0 gives plain CE.
        from_logits: Whether `y_pred` holds logits.
        tau_km: Smoothing temperature in km (> 0), or None for one-hot.

    Returns:
        Float32 tensor `[B]`.

    Example (by hand: -ln 0.5 + (0.3 * 1 + 0.2 * 4) / 4 = 0.9681):

    >>> d = [[0.0, 1.0, 4.0], [1.0, 0.0, 3.0], [4.0, 3.0, 0.0]]
    >>> loss = haversine_cross_entropy([0], [[0.5, 0.3, 0.2]], d, alpha=1.0)
    >>> round(float(loss[0]), 4)
    0.9681
    """
    _check_args(alpha, tau_km)
    y_pred = ops.cast(ops.convert_to_tensor(y_pred), "float32")
    distances = ops.cast(ops.convert_to_tensor(distances), "float32")
    y_true = ops.cast(ops.convert_to_tensor(y_true), "int32")
    if len(y_true.shape) == len(y_pred.shape):
        y_true = ops.squeeze(y_true, axis=-1)
    probs, log_probs = _probabilities(y_pred, from_logits)
    km_from_truth = ops.take(distances, y_true, axis=0)  # [B, C]
    if tau_km is None:
        targets = ops.one_hot(y_true, y_pred.shape[-1], dtype="float32")
    else:
        targets = ops.softmax(-km_from_truth / tau_km, axis=-1)
    cross_entropy = -ops.sum(targets * log_probs, axis=-1)
    if alpha == 0:
        return cross_entropy
    scale = ops.maximum(ops.max(distances), keras.config.epsilon())
    expected_km = ops.sum(probs * km_from_truth, axis=-1)
    return cross_entropy + alpha * expected_km / scale


def class_distance_matrix(class_names):
    """Validates `class_names`; returns their `[C, C]` float32 km matrix.

    Raises:
        ValueError: naming `class_names` if it is a string, empty, holds
            duplicates or an unknown country.
    """
    if isinstance(class_names, str) or not class_names:
        raise ValueError(
            "`class_names` must be a non-empty list of country names. "
            f"Received: class_names={class_names!r}"
        )
    names = list(class_names)
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"`class_names` must be unique. Duplicates: {duplicates}")
    try:
        return countries.distance_matrix_km(names).astype("float32")
    except UserError as e:  # The table's lookup error, for the CLI: here a Keras argument's.
        raise ValueError(f"`class_names` holds an unknown country. {e}") from None


@keras.saving.register_keras_serializable(package="keras_geo")
class HaversineCrossEntropy(keras.losses.Loss):
    """Cross-entropy plus `alpha` x the expected distance to the true country.

    Sparse integer labels (`[B]` or `[B, 1]`); see `haversine_cross_entropy`.

    Args:
        class_names: Country names in label order, e.g. `["France", ...]`;
            their points come from `keras_geo.countries`.
        alpha: Weight (>= 0) of the normalised expected distance (paper: 2.5).
        from_logits: Whether `y_pred` holds logits rather than probabilities.
        tau_km: PIGEON haversine label smoothing temperature in km (PIGEON
            uses ~65-75 km), or None for one-hot labels.
        reduction: As for any `keras.losses.Loss`.
        name: Loss name.
        dtype: As for any `keras.losses.Loss`; the math runs in float32.

    Example:

    >>> loss = HaversineCrossEntropy(["France", "Germany", "Japan"], alpha=1.0)
    >>> round(float(loss([0], [[1.0, 0.0, 0.0]])), 4)  # Certain and right.
    0.0
    >>> round(float(loss([0], [[0.0, 1.0, 0.0]])), 2)  # -ln(1e-7) + 758/9889.
    16.19
    """

    def __init__(
        self,
        class_names,
        alpha=2.5,
        from_logits=False,
        tau_km=None,
        reduction="sum_over_batch_size",
        name="haversine_cross_entropy",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        _check_args(alpha, tau_km)
        self.distances = class_distance_matrix(class_names)
        self.class_names = list(class_names)
        self.alpha = float(alpha)  # Plain floats: get_config goes to JSON.
        self.from_logits = bool(from_logits)
        self.tau_km = None if tau_km is None else float(tau_km)

    def call(self, y_true, y_pred):
        return haversine_cross_entropy(
            y_true,
            y_pred,
            self.distances,
            alpha=self.alpha,
            from_logits=self.from_logits,
            tau_km=self.tau_km,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "class_names": self.class_names,
                "alpha": self.alpha,
                "from_logits": self.from_logits,
                "tau_km": self.tau_km,
            }
        )
        return config
