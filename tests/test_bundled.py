"""The model bundled in the package (`keras_geo.bundled`): `predict` and `app` without --model.

The first tests use a stand-in bundle (a tiny export) to check the manifest
and the one-line errors; the last ones load the real bundled model, which
CI never trains.
"""

import io
import json
import shutil

import keras
import numpy as np
import pytest
from PIL import Image

from keras_geo import bundled, export, model_info, predict
from keras_geo.cli.main import main
from keras_geo.errors import UserError
from keras_geo.model import CaffePreprocessing

CLASS_NAMES = ["France", "Japan", "United States"]
MAX_BUNDLE_BYTES = 30 * 2**20  # Issue 18: at most about 30 MB added to the wheel.


def _jpeg(width=96, height=48, seed=0):
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory):
    """A tiny export with a manifest, as a bundle directory."""
    inputs = keras.Input((32, 32, 3))
    x = CaffePreprocessing()(inputs)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(x))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    directory = tmp_path_factory.mktemp("bundle") / "bundled_model"
    record = model_info.ModelInfo("x", "geoguessr/top20", {"accuracy": 0.5}).record()
    export.export_saved_model(model, CLASS_NAMES, directory, image_size=32, model_record=record)
    bundled.write_manifest(directory)
    return directory


@pytest.fixture
def bundle(stand_in, tmp_path, monkeypatch):
    """A fresh copy of the stand-in, installed as `keras_geo.bundled.DIRECTORY`."""
    directory = tmp_path / "bundled_model"
    shutil.copytree(stand_in, directory)
    monkeypatch.setattr(bundled, "DIRECTORY", directory)
    return directory


def test_predict_without_model_uses_the_bundle_and_names_it(bundle, tmp_path, capsys):
    image = tmp_path / "shot.jpg"
    image.write_bytes(_jpeg())
    assert main(["predict", str(image), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["model"] == bundled.NAME
    assert document["model_info"]["dataset"] == "geoguessr/top20"
    assert not document["model_info"]["synthetic"]
    assert document["predictions"][0]["countries"][0] in CLASS_NAMES
    assert main(["predict", str(image)]) == 0
    assert capsys.readouterr().out.startswith(f"Model: {bundled.NAME}: real screenshots")


@pytest.mark.parametrize(
    "damage, says",
    [
        (lambda d: (d / "saved_model.pb").unlink(), "saved_model.pb is missing"),
        (
            lambda d: next((d / "variables").glob("*.data-*")).write_bytes(b"\0" * 10),
            "(truncated or replaced)",
        ),
        (lambda d: (d / bundled.MANIFEST).unlink(), "the bundled model is missing"),
        (lambda d: (d / bundled.MANIFEST).write_text("{"), "MANIFEST.json is unreadable"),
    ],
)
def test_a_damaged_bundle_is_one_line_naming_the_file_and_the_fix(
    bundle, tmp_path, capsys, damage, says
):
    damage(bundle)
    image = tmp_path / "shot.jpg"
    image.write_bytes(_jpeg())
    assert main(["predict", str(image)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err and "pip install --force-reinstall" in err


def test_an_altered_file_of_the_same_size_is_caught(bundle):
    data = next((bundle / "variables").glob("*.data-*"))
    content = bytearray(data.read_bytes())
    content[-1] ^= 0xFF
    data.write_bytes(bytes(content))
    with pytest.raises(UserError, match="does not match its SHA-256"):
        bundled.path()


# The real bundled model (shipped in the package; trained by experiments/scratch_top20.py).


@pytest.fixture(scope="module")
def shipped():
    return predict.load_predictor()


def test_the_bundled_model_is_intact_small_and_real(shipped):
    assert bundled.path() == bundled.DIRECTORY
    on_disk = sum(f.stat().st_size for f in bundled.DIRECTORY.rglob("*") if f.is_file())
    assert bundled.size_bytes() <= on_disk <= MAX_BUNDLE_BYTES
    with open(bundled.DIRECTORY.parent / "bundled_model_card.json") as f:
        card = json.load(f)
    assert shipped.class_names == card["class_names"] and len(shipped.class_names) == 20
    record = export.read_export_record(bundled.DIRECTORY)
    assert record["image_size"] == card["image_size"]
    assert shipped.info.dataset == "geoguessr/top20" and not shipped.info.synthetic
    assert shipped.info.test["accuracy"] == pytest.approx(card["test"]["accuracy"])


def test_the_bundled_model_answers_on_an_image_of_any_size(shipped):
    for width, height in ((1536, 662), (224, 224), (50, 40)):
        probabilities = predict.probabilities_of(shipped, _jpeg(width, height, seed=width))
        assert probabilities.shape == (20,)
        assert np.isfinite(probabilities).all() and abs(probabilities.sum() - 1) < 1e-4
