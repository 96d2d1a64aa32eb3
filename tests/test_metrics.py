import math

import keras
import numpy as np
import pytest

from keras_geo import countries
from keras_geo.losses import HaversineCrossEntropy
from keras_geo.metrics import (
    MeanGreatCircleError,
    distance_summary,
    distances_km,
    geoguessr_score,
    great_circle_error_km,
)

NAMES = ["France", "Germany", "Japan"]
# Great-circle km between the countryinfo points (46, 2), (51, 9), (36, 138).
FR_DE, FR_JP, DE_JP = 757.704, 9889.335, 9135.908


@pytest.fixture(autouse=True)
def no_user_override(monkeypatch):
    monkeypatch.delenv(countries.ENV_VAR, raising=False)


Y_PRED = np.array(
    [
        [0.8, 0.1, 0.1],  # France, true France: 0 km.
        [0.1, 0.2, 0.7],  # Japan, true France: FR_JP.
        [0.6, 0.3, 0.1],  # France, true Germany: FR_DE.
        [0.2, 0.5, 0.3],  # Germany, true Japan: DE_JP.
    ],
    dtype="float32",
)
Y_TRUE = np.array([0, 0, 1, 2])


def test_pure_function_per_example():
    out = great_circle_error_km(Y_TRUE, Y_PRED, countries.distance_matrix_km(NAMES))
    np.testing.assert_allclose(np.asarray(out), [0, FR_JP, FR_DE, DE_JP], rtol=1e-5)


def test_metric_mean_by_hand():
    metric = MeanGreatCircleError(NAMES)
    assert metric.name == "mean_km"
    metric.update_state(Y_TRUE, Y_PRED)
    expected = (0 + FR_JP + FR_DE + DE_JP) / 4
    assert float(metric.result()) == pytest.approx(expected, rel=1e-5)
    metric.update_state(Y_TRUE[:1, None], Y_PRED[:1])  # [B, 1] labels, 0 km.
    assert float(metric.result()) == pytest.approx(expected * 4 / 5, rel=1e-5)
    metric.reset_state()
    metric.update_state(Y_TRUE, Y_PRED, sample_weight=[0.0, 1.0, 3.0, 0.0])
    assert float(metric.result()) == pytest.approx((FR_JP + 3 * FR_DE) / 4, rel=1e-5)


def test_metric_get_config_round_trip():
    metric = MeanGreatCircleError(NAMES, name="km")
    config = metric.get_config()
    assert config == {"class_names": NAMES, "name": "km", "dtype": "float32"}
    assert MeanGreatCircleError.from_config(config).get_config() == config
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
    assert isinstance(clone, MeanGreatCircleError) and clone.get_config() == config


def test_metric_in_compiled_model_saves_and_loads(tmp_path):
    inputs = keras.Input((3,))
    outputs = keras.layers.Softmax()(inputs)  # The model's output is its input.
    model = keras.Model(inputs, outputs)
    model.compile(loss=HaversineCrossEntropy(NAMES), metrics=[MeanGreatCircleError(NAMES)])
    logits = np.log(Y_PRED)
    result = model.evaluate(logits, Y_TRUE, verbose=0, return_dict=True)
    expected = (0 + FR_JP + FR_DE + DE_JP) / 4
    assert result["mean_km"] == pytest.approx(expected, rel=1e-5)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    again = loaded.evaluate(logits, Y_TRUE, verbose=0, return_dict=True)
    assert again["mean_km"] == pytest.approx(expected, rel=1e-5)


def test_bad_class_names_raise():
    with pytest.raises(ValueError, match="`class_names`.*'Narnia'"):
        MeanGreatCircleError(["France", "Narnia"])


def test_distances_km_numpy():
    km = distances_km([0, 0, 1, 2], [0, 2, 0, 1], NAMES)
    assert km.dtype == np.float64
    np.testing.assert_allclose(km, [0, FR_JP, FR_DE, DE_JP], rtol=1e-5)


def test_geoguessr_score_by_hand():
    assert geoguessr_score(0) == 5000.0
    assert geoguessr_score(1492.7) == pytest.approx(5000 / math.e)
    np.testing.assert_allclose(geoguessr_score([0.0, 2 * 1492.7]), [5000.0, 5000 / math.e**2])


def test_distance_summary_by_hand():
    summary = distance_summary([0.0, 1492.7, 2 * 1492.7])
    assert summary["mean_km"] == pytest.approx(1492.7)
    assert summary["median_km"] == pytest.approx(1492.7)
    expected = (5000 + 5000 / math.e + 5000 / math.e**2) / 3
    assert summary["geoguessr_score"] == pytest.approx(expected)
    assert all(math.isnan(v) for v in distance_summary([]).values())
