"""TrainConfig and Runtime: validation, overrides and the JSON round trip (both layouts)."""

import json

import pytest

from keras_geo import config as config_lib
from keras_geo import runs
from keras_geo.config import Runtime, TrainConfig

# A run's config.json as `train` wrote it before the Runtime split: one flat
# object (this one is the scratch_top20 run's, as the lead's run wrote it).
FLAT_CONFIG_JSON = {
    "alpha": 2.5,
    "backbone": "efficientnetv2b0",
    "batch_size": 64,
    "cache_features": False,
    "class_weight": "sqrt",
    "crop_min_area": 0.5,
    "data_dir": "/work/data",
    "data_service": None,
    "dataset": "geoguessr/top20",
    "epochs_finetune": 25,
    "epochs_frozen": 0,
    "finetune_learning_rate": 0.002,
    "finetune_stages": "all",
    "flip": False,
    "image_size": 64,
    "learning_rate": 0.002,
    "loss": "crossentropy",
    "lr_schedule": "cosine",
    "mixed_precision": False,
    "seed": 0,
    "strategy": "default",
    "tau_km": None,
    "warmup_epochs": 1,
    "weight_decay": 0.05,
    "weights": "none",
}


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
    with pytest.raises(ValueError, match="alpa"):
        TrainConfig().replace(alpa=1.0)
    with pytest.raises(ValueError, match="Unknown Runtime field.*'image_size'"):
        Runtime().replace(image_size=64)  # A recipe field.


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
    with pytest.raises(ValueError, match=message):
        TrainConfig().replace(**overrides)


def test_invalid_runtime_values_name_the_field_and_value():
    with pytest.raises(ValueError, match="strategy='tpu'"):
        Runtime(strategy="tpu")
    with pytest.raises(ValueError, match="data_service='nowhere'"):
        Runtime(data_service="nowhere")


def test_the_recipe_and_the_runtime_share_no_field():
    assert config_lib.field_names(TrainConfig) & config_lib.field_names(Runtime) == set()
    assert config_lib.field_names(Runtime) == {
        "data_dir",
        "data_service",
        "strategy",
        "mixed_precision",
    }


def test_json_round_trip(tmp_path):
    config = TrainConfig(dataset="geoguessr/synthetic", image_size=64, tau_km=70.0, flip=False)
    config.to_json(tmp_path / "config.json")
    assert TrainConfig.from_json(tmp_path / "config.json") == config
    runtime = Runtime(data_dir=str(tmp_path), strategy="mirrored", mixed_precision=True)
    config_lib.write_json(tmp_path / "run.json", config, runtime)
    stored = json.loads((tmp_path / "run.json").read_text())
    assert set(stored) == {"recipe", "runtime"} and stored["runtime"]["strategy"] == "mirrored"
    assert config_lib.read_json(tmp_path / "run.json") == (config, runtime)


def test_a_flat_config_json_of_before_the_split_loads(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(FLAT_CONFIG_JSON))
    config, runtime = config_lib.read_json(path)
    assert runtime == Runtime(data_dir="/work/data")
    recipe = {k: v for k, v in FLAT_CONFIG_JSON.items() if k not in config_lib.field_names(Runtime)}
    assert config.to_dict() == recipe
    assert TrainConfig.from_json(path) == config


def test_a_run_dir_with_a_flat_config_json_resumes_and_refuses_another_recipe(tmp_path):
    from keras_geo.errors import UserError

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / runs.CONFIG_FILE).write_text(json.dumps(FLAT_CONFIG_JSON))
    (run_dir / "phases_done.json").write_text('{"frozen": {}}')  # Something was trained.
    config, runtime = runs.stored_run_config(run_dir)
    assert runs.stored_config(run_dir) == config and runtime.data_dir == "/work/data"
    runs.check_run_dir(config, run_dir)  # The same recipe resumes...
    moved = runtime.replace(data_dir=str(tmp_path / "data"), strategy="mirrored")
    runs.prepare_run_dir(config, run_dir, runtime=moved)  # ...wherever its data now is,
    assert runs.stored_run_config(run_dir) == (config, moved)  # in the two-part layout.
    with pytest.raises(UserError, match="epochs_finetune: 25 -> 26"):
        runs.check_run_dir(config.replace(epochs_finetune=26), run_dir)


@pytest.mark.parametrize(
    "value, error",
    [
        ([1, 2], TypeError),
        ({"recipe": [1]}, TypeError),
        ({"recipe": {}, "extra": {}}, ValueError),
        ({"recipe": {"data_dir": "/d"}}, ValueError),  # A runtime field in the recipe.
    ],
)
def test_a_malformed_config_object_is_refused(value, error):
    with pytest.raises(error):
        config_lib.from_dict(value)
