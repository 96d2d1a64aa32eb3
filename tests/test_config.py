"""TrainConfig: validation, overrides and the JSON round trip."""

import pytest

from keras_geo.config import TrainConfig
from keras_geo.errors import UserError


def test_defaults_are_the_papers():
    config = TrainConfig()
    assert (config.learning_rate, config.weight_decay, config.batch_size, config.alpha) == (
        1e-3,
        1e-4,
        180,
        2.5,
    )
    assert config.flip and config.loss == "haversine"


def test_replace_rejects_unknown_fields():
    with pytest.raises(UserError, match="alpa"):
        TrainConfig().replace(alpa=1.0)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"image_size": 16}, "image_size=16"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"alpha": -1.0}, "alpha=-1.0"),
        ({"learning_rate": 0.0}, "learning_rate=0.0"),
        ({"tau_km": 0.0}, "tau_km=0.0"),
        ({"loss": "mse"}, "loss='mse'"),
    ],
)
def test_invalid_values_name_the_field_and_value(overrides, message):
    with pytest.raises(UserError, match=message):
        TrainConfig().replace(**overrides)


def test_json_round_trip(tmp_path):
    config = TrainConfig(dataset="geoguessr/synthetic", image_size=64, tau_km=70.0, flip=False)
    config.to_json(tmp_path / "config.json")
    assert TrainConfig.from_json(tmp_path / "config.json") == config
