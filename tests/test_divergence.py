"""A run that diverges is not finished, and no answer or metrics file holds NaN."""

import json

import keras
import numpy as np
import pytest
from app_helpers import CLASS_NAMES, IMAGE_SIZE, tiny_model
from fastapi.testclient import TestClient
from PIL import Image
from train_helpers import synthetic_argv

from keras_geo import paths, predict, runs
from keras_geo.app import server
from keras_geo.cli.main import main
from keras_geo.config import TrainConfig
from keras_geo.divergence import StopOnDivergence, TrainingDiverged

TINY = "--weights none --image-size 32 --epochs-frozen 2 --epochs-finetune 1 --batch-size 64"


def _one_line_error(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1]  # After Keras' epoch lines, if any.


def test_a_learning_rate_of_1e30_stops_the_run_unfinished(synthetic_data_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    argv = synthetic_argv("train", synthetic_data_dir, "--run-dir", str(run_dir), *TINY.split())
    assert main([*argv, "--learning-rate", "1e30"]) == 2
    err = _one_line_error(capsys)
    assert err.startswith("keras-geo: error: training diverged: the loss is ")
    assert "(phase frozen)" in err and "lower --learning-rate (now 1e+30)" in err
    # Nothing a later command would take for a finished run.
    assert not (run_dir / runs.MODEL_FILE).exists()
    assert not (run_dir / runs.PHASES_DONE_FILE).exists()
    assert not runs.checkpoint_path(run_dir, "frozen").exists()
    assert main(["predict", "--model", str(run_dir), str(tmp_path)]) == 2
    assert "No model at" in capsys.readouterr().err
    # Nothing was trained: the same directory takes a corrected config, no --overwrite.
    assert main([*argv, "--learning-rate", "0.001", "--epochs-frozen", "1"]) == 0
    assert (run_dir / runs.MODEL_FILE).is_file()


@pytest.mark.parametrize("flag", ["--learning-rate", "--alpha", "--weight-decay"])
def test_infinite_rates_are_refused_before_training(synthetic_data_dir, tmp_path, capsys, flag):
    argv = synthetic_argv(
        "train", synthetic_data_dir, "--run-dir", str(tmp_path / "r"), flag, "inf"
    )
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "must be" in err and "finite. Received: " in err
    assert not (tmp_path / "r").exists()


def test_the_guard_keeps_the_finished_epochs_and_nothing_of_the_diverging_one():
    """Epoch 1 finite, epoch 2 NaN: the history row and checkpoint of epoch 2 are never written."""
    written = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            written.append(epoch)

    class Poison(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.layers[-1].kernel.assign(np.full((4, 2), np.nan, "float32"))

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = np.ones((8, 4), "float32"), np.zeros(8, "int64")
    guard = StopOnDivergence("frozen", "lower --learning-rate (now 0.01)")
    with pytest.raises(TrainingDiverged, match=r"loss is nan at batch 1 of epoch 2 \(phase fro"):
        model.fit(x, y, epochs=3, batch_size=4, verbose=0, callbacks=[guard, Record(), Poison()])
    assert written == [0]


@pytest.fixture(scope="module")
def nan_run(tmp_path_factory):
    """A run directory whose model gives NaN for every input (its weights are NaN)."""
    run_dir = tmp_path_factory.mktemp("nan") / "run"
    run_dir.mkdir()
    model = tiny_model()
    model.set_weights([np.full(w.shape, np.nan, "float32") for w in model.get_weights()])
    config = TrainConfig(image_size=IMAGE_SIZE, weights="none")
    config.to_json(run_dir / runs.CONFIG_FILE)
    runs.write_class_names(run_dir, CLASS_NAMES)
    runs.save_model(model, run_dir / runs.MODEL_FILE, CLASS_NAMES, config)
    image = run_dir.parent / "scene.png"
    Image.new("RGB", (40, 30), (10, 120, 40)).save(image)
    return run_dir, image


def test_predict_json_never_prints_nan(nan_run, capsys):
    run_dir, image = nan_run
    assert main(["predict", "--json", "--model", str(run_dir), str(image)]) == 2
    out, err = capsys.readouterr()
    assert "NaN" not in out and out == ""
    assert err.startswith("keras-geo: error: the model gives non-finite probabilities (nan)")
    assert err.count("\n") == 1


def test_the_app_answers_json_for_a_nan_model(nan_run):
    run_dir, image = nan_run
    state = server.make_state(predict.load_predictor(run_dir), model_name="nan", examples=0)
    try:
        with TestClient(server.build_app(state)) as client:
            files = {"image": ("scene.png", image.read_bytes(), "image/png")}
            response = client.post("/api/predict", files=files)
    finally:
        state.close()
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert "non-finite probabilities" in response.json()["error"]


def test_json_files_refuse_nan(tmp_path):
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        paths.write_json(tmp_path / "metrics.json", {"accuracy": float("nan")})
    assert not (tmp_path / "metrics.json").exists()
    paths.write_json(tmp_path / "metrics.json", {"accuracy": 0.5})
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"accuracy": 0.5}
