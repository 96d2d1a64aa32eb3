"""A model's side files are input too: a broken or edited one is one line naming it.

Every case loads through the commands that read a model (`predict`, `evaluate`,
`app`, `export`) and must end in one line on stderr, exit 2, before any work.
"""

import json
import shutil
import socket
import zipfile

import keras
import pytest
from app_helpers import CLASS_NAMES, IMAGE_SIZE, tiny_model

from keras_geo import runs
from keras_geo.cli.main import main
from keras_geo.config import TrainConfig
from keras_geo.errors import UserError

EMBEDDED_NAMES = "keras_geo/class_names.json"
EMBEDDED_CONFIG = "keras_geo/train_config.json"


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    """A run directory of the tiny app model (5 classes, 32 px), names and config embedded."""
    keras.utils.set_random_seed(5)
    run_dir = tmp_path_factory.mktemp("side") / "run"
    run_dir.mkdir()
    config = TrainConfig(image_size=IMAGE_SIZE, weights="none")
    config.to_json(run_dir / runs.CONFIG_FILE)
    runs.write_class_names(run_dir, CLASS_NAMES)
    runs.save_model(tiny_model(), run_dir / runs.MODEL_FILE, CLASS_NAMES, config)
    return run_dir


@pytest.fixture
def run(good_run, tmp_path, monkeypatch):
    """A fresh copy of `good_run` for a test to break; the app must never get to serve it."""
    from keras_geo.app import server

    def served(state):
        raise AssertionError("the app loaded a broken model")

    monkeypatch.setattr(server, "build_app", served)
    return shutil.copytree(good_run, tmp_path / "run")


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _replace_member(path, name, data):
    """Rewrites the zip at `path` with member `name` holding `data` (bytes)."""
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    members[name] = data
    with zipfile.ZipFile(path, "w") as archive:
        for member, content in members.items():
            archive.writestr(member, content)


def _one_line(argv, capsys):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("keras-geo: error: ") and err.count("\n") == 1, err
    return err


def _commands(model_path, tmp_path):
    image = tmp_path / "scene.png"
    from PIL import Image

    Image.new("RGB", (40, 30), (10, 120, 40)).save(image)
    return {
        "predict": ["predict", "--model", str(model_path), str(image)],
        "export": ["export", "--run-dir", str(model_path), "--out", str(tmp_path / "out")],
        "app": ["app", "--model", str(model_path), "--port", str(_free_port())],
    }


@pytest.mark.parametrize(
    "content, message",
    [
        ('["Brazil", "Fra', "class_names.json is not valid JSON"),  # Truncated.
        ('{"a": 1}', "class_names.json must hold a JSON list of class names"),
        ('["Brazil", "France", "Japan", "Norway"]', "class_names.json disagrees with the class"),
        ('["Brazil", "Japan", "France", "Norway", "United States"]', "(class 1: 'Japan' instead"),
        ('["Brazil", "Brazil", "Japan", "Norway", "United States"]', "must be distinct"),
    ],
)
def test_a_broken_or_edited_class_names_file_is_named(run, tmp_path, capsys, content, message):
    (run / runs.CLASS_NAMES_FILE).write_text(content)
    for argv in _commands(run, tmp_path).values():
        err = _one_line(argv, capsys)
        assert f"{run / runs.CLASS_NAMES_FILE}" in err and message in err, err
    err = _one_line(["evaluate", "--run-dir", str(run)], capsys)  # Before any data is read.
    assert message in err


def test_class_names_of_another_count_than_the_outputs(run, tmp_path, capsys):
    """A `.keras` saved by hand (nothing embedded) next to 4 names for 5 outputs."""
    bare = tmp_path / "bare"
    bare.mkdir()
    model = keras.saving.load_model(run / runs.MODEL_FILE, compile=False)
    model.save(bare / "model.keras")
    (bare / runs.CLASS_NAMES_FILE).write_text(json.dumps(CLASS_NAMES[:4]))
    argv = _commands(bare / "model.keras", tmp_path)["predict"] + ["--top-k", "5"]
    err = _one_line(argv, capsys)
    assert "class_names.json holds 4 class names but the model has 5 outputs" in err


@pytest.mark.parametrize(
    "member, content, message",
    [
        (EMBEDDED_CONFIG, b"[1, 2]", "train_config.json) must hold a JSON object"),
        (EMBEDDED_CONFIG, b'{"image_size": "big"}', "train_config.json) is not a valid run config"),
        (EMBEDDED_NAMES, b"not json", "class_names.json) is not valid JSON"),
        (EMBEDDED_NAMES, b"5", "class_names.json) must hold a JSON list"),
    ],
)
def test_broken_embedded_metadata_is_named(run, tmp_path, capsys, member, content, message):
    model_path = run / runs.MODEL_FILE
    _replace_member(model_path, member, content)
    for argv in _commands(model_path, tmp_path).values():
        err = _one_line(argv, capsys)
        assert f"{model_path} (keras_geo/" in err and message in err, err


def test_an_edited_image_size_is_named(run, tmp_path, capsys):
    config = json.loads((run / runs.CONFIG_FILE).read_text())
    config["recipe"]["image_size"] = 64
    (run / runs.CONFIG_FILE).write_text(json.dumps(config))
    err = _one_line(["evaluate", "--run-dir", str(run)], capsys)
    assert f"{run / runs.CONFIG_FILE} disagrees with the config" in err
    assert "image_size: 32 -> 64" in err
    # Without an embedded config to compare with, the model's input size tells.
    with zipfile.ZipFile(run / runs.MODEL_FILE) as archive:
        kept = {i.filename: archive.read(i) for i in archive.infolist()}
    with zipfile.ZipFile(run / runs.MODEL_FILE, "w") as archive:
        for name, data in kept.items():
            if name != EMBEDDED_CONFIG:
                archive.writestr(name, data)
    with pytest.raises(UserError, match="image_size is 64 but the model takes 32 px"):
        runs.load_model(run)


def test_the_good_run_loads(good_run):
    model, names, config = runs.load_model(good_run)
    assert names == CLASS_NAMES and config.image_size == IMAGE_SIZE
    assert model.output_shape[-1] == len(CLASS_NAMES)
