"""The image boundary (`keras_geo.images`) and the predictors that stand behind it."""

import io

import numpy as np
import pytest
from app_helpers import CLASS_NAMES, IMAGE_SIZE, save_models, scene_files, tiny_model
from PIL import Image

from keras_geo import images, litert, predict
from keras_geo.app.batching import Batcher


@pytest.fixture(scope="module")
def predictors(tmp_path_factory):
    """A Keras, a SavedModel and a LiteRT predictor of the same weights, and a batcher."""
    root = tmp_path_factory.mktemp("predictors")
    run_dir, saved_model = save_models(root)
    keras_predictor = predict.load_predictor(run_dir)
    tflite = litert.export_litert(
        keras_predictor.model, CLASS_NAMES, root / "geo.tflite", image_size=IMAGE_SIZE
    )
    found = {
        "keras": keras_predictor,
        "savedmodel": predict.load_predictor(saved_model),
        "litert": predict.load_predictor(tflite),
    }
    found["batcher"] = Batcher(found["savedmodel"], max_batch=4)
    yield found
    found["batcher"].close()


@pytest.mark.parametrize("kind", ["keras", "savedmodel", "litert", "batcher"])
def test_every_predictor_satisfies_the_protocol_and_answers_alike(predictors, kind, tmp_path):
    predictor = predictors[kind]
    assert isinstance(predictor, predict.Predictor)
    assert predictor.class_names == CLASS_NAMES
    assert predictor.tta == 1
    assert predictor.info.name
    shots = [path.read_bytes() for path in scene_files(tmp_path, count=3)]
    batch = predictor.probabilities_batch(shots)
    assert batch.shape == (3, len(CLASS_NAMES))
    np.testing.assert_allclose(predictor.probabilities(shots[1]), batch[1], atol=1e-5)
    expected = predictors["savedmodel"].probabilities_batch(shots)
    np.testing.assert_allclose(batch, expected, atol=1e-5)


def test_a_model_without_the_predictor_members_is_not_one():
    assert not isinstance(tiny_model(), predict.Predictor)


def test_the_python_check_and_the_graph_check_agree_on_the_pixel_limit(monkeypatch):
    """One limit for both sides of the boundary: `check_image_bytes` and `decode_image`."""
    import tensorflow as tf

    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (9, 8, 7)).save(buffer, format="PNG")
    data = buffer.getvalue()
    monkeypatch.setenv("KERAS_GEO_MAX_PIXELS", "1199")
    with pytest.raises(ValueError, match="too large: 40x30 pixels"):
        images.check_image_bytes(data)
    with pytest.raises(tf.errors.InvalidArgumentError, match=images.TOO_LARGE):
        images.decode_image(tf.constant(data), image_size=IMAGE_SIZE)
    monkeypatch.setenv("KERAS_GEO_MAX_PIXELS", "1200")
    images.check_image_bytes(data)
    pixels = images.decode_image(tf.constant(data), image_size=IMAGE_SIZE)
    assert pixels.shape == (IMAGE_SIZE, IMAGE_SIZE, 3)


def test_what_is_not_an_image_is_named_from_the_one_format_list():
    with pytest.raises(ValueError, match=f"not an image \\({images.FORMATS} expected\\)"):
        images.check_image_bytes(b"%PDF-1.7 not a picture")
