import json
import math

import keras
import numpy as np
import pytest

from keras_geo import countries
from keras_geo.losses import HaversineCrossEntropy, haversine_cross_entropy

NAMES = ["France", "Germany", "Japan"]
# Great-circle km between the countryinfo points (46, 2), (51, 9), (36, 138).
FR_DE, FR_JP, DE_JP = 757.704, 9889.335, 9135.908
TOY = [[0.0, 1.0, 4.0], [1.0, 0.0, 3.0], [4.0, 3.0, 0.0]]  # Made-up km.


@pytest.fixture(autouse=True)
def no_user_override(monkeypatch):
    monkeypatch.delenv(countries.ENV_VAR, raising=False)


def gradient(fn, x):
    """d fn(x) / dx for a scalar fn, on the TensorFlow or JAX backend."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        x = tf.Variable(x)
        with tf.GradientTape() as tape:
            value = fn(x)
        return np.asarray(tape.gradient(value, x))
    if keras.backend.backend() == "jax":
        import jax

        return np.asarray(jax.grad(fn)(x))
    pytest.skip("gradient helper supports the tensorflow and jax backends")


def test_distances_used_by_the_loss():
    loss = HaversineCrossEntropy(NAMES)
    np.testing.assert_allclose(
        loss.distances,
        [[0, FR_DE, FR_JP], [FR_DE, 0, DE_JP], [FR_JP, DE_JP, 0]],
        rtol=1e-5,
    )


@pytest.mark.parametrize("from_logits", [False, True])
def test_alpha_zero_equals_sparse_categorical_crossentropy(from_logits):
    y_true = np.array([0, 2, 1, 2])
    y_pred = np.array(
        [[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4], [0.5, 0.4, 0.1]],
        dtype="float32",
    )
    if from_logits:
        y_pred = np.log(y_pred) * 3.0
    ours = HaversineCrossEntropy(NAMES, alpha=0.0, from_logits=from_logits)
    keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    assert float(ours(y_true, y_pred)) == pytest.approx(float(keras_loss(y_true, y_pred)), rel=1e-6)
    weights = np.array([1.0, 0.0, 2.0, 0.5])
    assert float(ours(y_true, y_pred, sample_weight=weights)) == pytest.approx(
        float(keras_loss(y_true, y_pred, sample_weight=weights)), rel=1e-6
    )


def test_value_by_hand_with_toy_distances():
    # -ln 0.5 + 2 * (0.3 * 1 + 0.2 * 4) / 4 = 0.693147 + 0.55
    out = haversine_cross_entropy([0], [[0.5, 0.3, 0.2]], TOY, alpha=2.0)
    assert float(out[0]) == pytest.approx(-math.log(0.5) + 0.55, rel=1e-6)


def test_value_by_hand_with_countries():
    # True Germany, p = (0.2, 0.3, 0.5); max distance is France-Japan.
    loss = HaversineCrossEntropy(NAMES, alpha=2.5, reduction=None)
    out = loss(np.array([1, 0]), np.array([[0.2, 0.3, 0.5], [0.2, 0.3, 0.5]]))
    germany = -math.log(0.3) + 2.5 * (0.2 * FR_DE + 0.5 * DE_JP) / FR_JP
    france = -math.log(0.2) + 2.5 * (0.3 * FR_DE + 0.5 * FR_JP) / FR_JP
    np.testing.assert_allclose(np.asarray(out), [germany, france], rtol=1e-5)


def test_labels_of_shape_b_and_b1_agree():
    loss = HaversineCrossEntropy(NAMES, reduction=None)
    y_pred = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]], dtype="float32")
    flat = np.asarray(loss(np.array([2, 0]), y_pred))
    column = np.asarray(loss(np.array([[2], [0]]), y_pred))
    assert flat.shape == (2,)
    np.testing.assert_allclose(flat, column)


def test_haversine_smoothing_by_hand():
    # tau = 1 "km" on the toy matrix, true class 0: q = (1, e^-1, e^-4) / Z.
    z = 1 + math.exp(-1) + math.exp(-4)
    q = [1 / z, math.exp(-1) / z, math.exp(-4) / z]
    p = [0.5, 0.3, 0.2]
    expected = -sum(qk * math.log(pk) for qk, pk in zip(q, p, strict=True))
    out = haversine_cross_entropy([0], [p], TOY, alpha=0.0, tau_km=1.0)
    assert float(out[0]) == pytest.approx(expected, rel=1e-6)


def test_haversine_smoothing_limits():
    y_pred = np.array([[0.2, 0.3, 0.5]], dtype="float32")
    one_hot = HaversineCrossEntropy(NAMES, alpha=0.0)([1], y_pred)
    sharp = HaversineCrossEntropy(NAMES, alpha=0.0, tau_km=1.0)([1], y_pred)
    assert float(sharp) == pytest.approx(float(one_hot), rel=1e-6)
    flat = HaversineCrossEntropy(NAMES, alpha=0.0, tau_km=1e9)([1], y_pred)
    assert float(flat) == pytest.approx(-np.mean(np.log(y_pred)), rel=1e-5)


@pytest.mark.parametrize("tau_km", [None, 500.0])
def test_from_logits_equals_softmax_then_probabilities(tau_km):
    logits = np.array([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]], dtype="float32")
    probs = np.asarray(keras.ops.softmax(logits))
    y_true = np.array([1, 2])
    with_logits = HaversineCrossEntropy(NAMES, from_logits=True, tau_km=tau_km)
    with_probs = HaversineCrossEntropy(NAMES, from_logits=False, tau_km=tau_km)
    assert float(with_logits(y_true, logits)) == pytest.approx(
        float(with_probs(y_true, probs)), rel=1e-5
    )


def logit_gradient(alpha):
    loss = HaversineCrossEntropy(NAMES, alpha=alpha, from_logits=True)
    logits = np.zeros((1, 3), dtype="float32")  # Equal probabilities.
    return gradient(lambda x: loss(np.array([0]), x), logits)[0]


def test_gradient_favours_near_countries():
    plain = logit_gradient(alpha=0.0)
    # Cross-entropy alone: p - onehot, the same for Germany and Japan.
    np.testing.assert_allclose(plain, [-2 / 3, 1 / 3, 1 / 3], rtol=1e-5)
    grad = logit_gradient(alpha=2.5)
    assert np.all(grad != 0)
    # Descent lowers Japan's (far) logit more than Germany's (near) one.
    assert grad[2] > plain[2] and plain[1] > grad[1]
    assert grad[2] > grad[1]
    # By hand: alpha / max(D) * p_j * (D[y, j] - E[D]), E[D] = (0 + FR_DE + FR_JP) / 3.
    mean_km = (FR_DE + FR_JP) / 3
    extra = [2.5 / FR_JP / 3 * (d - mean_km) for d in (0.0, FR_DE, FR_JP)]
    np.testing.assert_allclose(grad, plain + extra, rtol=1e-4)


def test_gradient_step_moves_mass_toward_near_country():
    loss = HaversineCrossEntropy(NAMES, alpha=2.5)
    logits = np.zeros((1, 3), dtype="float32")
    grad = gradient(lambda x: loss(np.array([0]), keras.ops.softmax(x)), logits)
    probs = np.asarray(keras.ops.softmax(logits - 1.0 * grad))[0]
    assert probs[1] > probs[2]  # Germany gains on Japan.


def test_get_config_round_trip():
    loss = HaversineCrossEntropy(
        NAMES, alpha=1.5, from_logits=True, tau_km=70.0, reduction="sum", name="geo"
    )
    config = loss.get_config()
    assert config == {
        "name": "geo",
        "reduction": "sum",
        "class_names": NAMES,
        "alpha": 1.5,
        "from_logits": True,
        "tau_km": 70.0,
    }
    clone = HaversineCrossEntropy.from_config(config)
    assert clone.get_config() == config
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(again, HaversineCrossEntropy) and again.get_config() == config
    logits = np.array([[1.0, 2.0, 3.0]], dtype="float32")
    assert float(clone([2], logits)) == pytest.approx(float(loss([2], logits)))


def test_model_with_loss_saves_and_loads(tmp_path):
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(3, activation="softmax")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss=HaversineCrossEntropy(NAMES, alpha=1.0))
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.loss, HaversineCrossEntropy)
    assert loaded.loss.get_config() == model.loss.get_config()
    assert loaded.evaluate(x, y, verbose=0) == pytest.approx(
        model.evaluate(x, y, verbose=0), rel=1e-5
    )


def test_float16_probabilities_near_0_and_1_are_finite():
    loss = HaversineCrossEntropy(NAMES)
    y_pred = np.array([[1.0, 0.0, 0.0], [0.0, 6e-8, 1.0], [1e-4, 0.9999, 0.0]], "float16")
    y_true = np.array([1, 0, 2])  # Confidently wrong everywhere.
    value = loss(y_true, y_pred)
    assert np.isfinite(float(value))
    assert float(value) == pytest.approx(
        (3 * -math.log(1e-7) + 2.5 * (FR_DE + 1.0 * FR_JP + 1.0 * DE_JP) / FR_JP) / 3,
        rel=1e-3,
    )
    assert np.all(np.isfinite(gradient(lambda x: loss(y_true, x), y_pred)))


def test_float16_extreme_logits_are_finite():
    loss = HaversineCrossEntropy(NAMES, from_logits=True, tau_km=70.0)
    logits = np.array([[60000.0, -60000.0, 0.0]], dtype="float16")
    value = loss(np.array([1]), logits)
    assert np.isfinite(float(value)) and float(value) > 1e4
    assert np.all(np.isfinite(gradient(lambda x: loss(np.array([1]), x), logits)))


@pytest.fixture
def mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_mixed_float16_model_trains_with_finite_loss(mixed_precision):
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    outputs = keras.layers.Dense(3, activation="softmax", dtype="float32")(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss=HaversineCrossEntropy(NAMES))
    x = 100.0 * np.random.default_rng(1).normal(size=(6, 4)).astype("float32")
    history = model.fit(x, np.array([0, 1, 2, 0, 1, 2]), epochs=1, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"alpha": -1}, r"`alpha` must be >= 0\. Received: alpha=-1"),
        ({"alpha": "big"}, r"`alpha` must be >= 0\. Received: alpha='big'"),
        ({"tau_km": 0}, r"`tau_km` must be > 0 or None\. Received: tau_km=0"),
        ({"tau_km": -70.0}, r"Received: tau_km=-70\.0"),
        ({"class_names": ["France", "Atlantis"]}, r"`class_names`.*'Atlantis'"),
        ({"class_names": "France"}, r"`class_names` must be a non-empty list"),
        ({"class_names": []}, r"`class_names` must be a non-empty list"),
        ({"class_names": ["France", "France"]}, r"Duplicates: \['France'\]"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    kwargs = {"class_names": NAMES, **kwargs}
    with pytest.raises(ValueError, match=match):  # As Keras' own arguments.
        HaversineCrossEntropy(**kwargs)


def test_pure_function_validates_too():
    with pytest.raises(ValueError, match="alpha=-0.5"):
        haversine_cross_entropy([0], [[1.0, 0.0, 0.0]], TOY, alpha=-0.5)


def test_numpy_scalars_become_json_floats():
    loss = HaversineCrossEntropy(NAMES, alpha=np.float32(2.0), tau_km=np.int64(70))
    config = json.loads(json.dumps(loss.get_config()))
    assert config["alpha"] == 2.0 and config["tau_km"] == 70.0
