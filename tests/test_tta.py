"""Test-time views: deterministic crops, N=1 is no TTA, export equals Keras."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_geo import export, predict, runs, tta
from keras_geo import model as geo_model
from keras_geo.cli.main import main
from keras_geo.config import TrainConfig
from keras_geo.errors import UserError

SIZE = 32
CLASS_NAMES = ["France", "Japan", "United States"]


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return geo_model.build_model(len(CLASS_NAMES), backbone="vgg16", image_size=SIZE, weights=None)


def _images(n=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE, 3)).astype("float32")


def test_crop_boxes():
    assert tta.crop_box(64, 0.875, 1.0, 0.0) == (8, 0, 56)
    assert tta.crop_box(64, 1.0, 0.5, 0.5) == (0, 0, 64)
    assert tta.crop_box(32, 0.75, 0.5, 0.5) == (4, 4, 24)
    assert all(scale <= 1 for scale, _, _ in tta.VIEWS)  # crops only: never a mirror


def test_one_view_is_no_tta(model):
    assert tta.with_test_time_views(model, 1) is model


def test_views_average_the_model_over_crops(model):
    images = _images()
    wrapped = tta.with_test_time_views(model, 3)
    assert wrapped.input_shape == model.input_shape and wrapped.output_shape == model.output_shape
    expected = []
    for scale, anchor_y, anchor_x in tta.VIEWS[:3]:
        top, left, side = tta.crop_box(SIZE, scale, anchor_y, anchor_x)
        view = images[:, top : top + side, left : left + side]
        view = tf.image.resize(view, (SIZE, SIZE), method="bilinear").numpy()
        expected.append(keras.ops.convert_to_numpy(model(view)))
    got = keras.ops.convert_to_numpy(wrapped(images))
    np.testing.assert_allclose(got, np.mean(expected, axis=0), atol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("views", [0, -1, len(tta.VIEWS) + 1, 1.5, True])
def test_bad_view_counts(views):
    with pytest.raises(UserError, match="`--tta` must be an integer from 1 to"):
        tta.check_views(views)


def test_export_with_views_keeps_signatures_and_equals_keras(model, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    config = TrainConfig(backbone="vgg16", image_size=SIZE, weights="none")
    runs.save_model(model, run_dir / runs.MODEL_FILE, CLASS_NAMES, config)
    runs.write_class_names(run_dir, CLASS_NAMES)
    out = tmp_path / "export"
    assert main(["export", "--run-dir", str(run_dir), "--out", str(out), "--tta", "3"]) == 0
    loaded = tf.saved_model.load(str(out))
    assert set(loaded.signatures) == set(export.SIGNATURES)
    assert export.read_metadata(loaded)["tta"] == 3
    images = _images(seed=1).round()
    served = loaded.signatures["serve_pixels"](images=tf.constant(images.astype("uint8")))
    keras_tta = tta.with_test_time_views(model, 3)
    expected = keras.ops.convert_to_numpy(keras_tta(images))
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, atol=1e-5)

    with pytest.raises(UserError, match="exported with --tta 3"):
        predict.load_predictor(out, tta=2)
    assert predict.load_predictor(out).tta == 3
    assert predict.load_predictor(run_dir, tta=4).tta == 4


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate", "--run-dir", "nowhere", "--tta", "0"],
        ["export", "--run-dir", "nowhere", "--out", "x", "--tta", "0"],
        ["predict", "--model", "nowhere", "--tta", "0", "a.jpg"],
    ],
)
def test_tta_zero_is_a_one_line_error(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("keras-geo: error: ") and "--tta" in err and "\n" not in err
    assert not (tmp_path / "x").exists()


def test_the_keras_predictor_averages_its_views(model):
    """`predict --tta N` on a run or `.keras` file calls the wrapped model, not the bare one."""
    image = tf.io.encode_png(_images(1)[0].astype("uint8")).numpy()
    with_views = predict.KerasPredictor(model, CLASS_NAMES, SIZE, tta=3)
    without = predict.KerasPredictor(model, CLASS_NAMES, SIZE, tta=1)
    pixels = with_views.pixels(image)[None]
    expected = keras.ops.convert_to_numpy(tta.with_test_time_views(model, 3)(pixels))[0]
    np.testing.assert_allclose(with_views.probabilities(image), expected, atol=1e-5)
    assert not np.allclose(with_views.probabilities(image), without.probabilities(image), atol=1e-6)
