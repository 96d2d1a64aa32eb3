"""Settings checked once at start with bounds, extreme flags refused, and the app's workarounds.

Every command checks the environment before any work (`keras_geo.settings`),
so a bad value is one line and exit 2 at start: never a traceback, a silent
`null`, or an app that starts and then fails every request.
"""

import json
import pathlib

import pytest
from app_helpers import CLASS_NAMES, IMAGE_SIZE, tiny_model

from keras_geo import countries, pipeline, runs, settings
from keras_geo.cli.main import main
from keras_geo.config import TrainConfig

COMMANDS = {
    "train": ["train", "--run-dir", "RUN"],
    "evaluate": ["evaluate", "--run-dir", "RUN"],
    "tune": ["tune", "--run-dir", "RUN"],
    "export": ["export", "--run-dir", "RUN", "--out", "OUT"],
    "predict": ["predict", "--model", "RUN", "image.jpg"],
    "app": ["app", "--model", "RUN"],
    "data build": ["data", "build", "--config", "synthetic", "--data-dir", "DATA"],
    "data info": ["data", "info", "--out", "OUT"],
    "data-service": ["data-service", "worker", "--port", "0", "--dispatcher", "127.0.0.1:1"],
    "demo": ["demo", "--run-dir", "RUN"],
    "ablate": ["ablate", "demo", "--out", "OUT"],
    "bench": ["bench", "input", "--dataset", "geoguessr/synthetic"],
}


def _argv(command, tmp_path):
    names = {"RUN": tmp_path / "run", "OUT": tmp_path / "out", "DATA": tmp_path / "data"}
    return [str(names.get(arg, arg)) for arg in COMMANDS[command]]


def _one_line(capsys):
    err = capsys.readouterr().err
    assert err.startswith("keras-geo: error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(
    "value", ["abc", "inf", "1e32", "99999999999999999999999", "0", "1000000001"]
)
def test_every_command_refuses_a_bad_pixel_limit_at_start(
    command, value, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("KERAS_GEO_MAX_PIXELS", value)
    assert main(_argv(command, tmp_path)) == 2
    assert _one_line(capsys) == (
        "keras-geo: error: KERAS_GEO_MAX_PIXELS must be a positive integer of at most "
        f"1000000000 (1 gigapixel). Received: {value!r}\n"
    )
    assert list(tmp_path.iterdir()) == []  # Refused before touching anything.


@pytest.mark.parametrize(
    "value, words",
    [
        ("/etc/passwd", "lacks column(s) ['latitude', 'longitude', 'name']"),
        ("/nonexistent/countries.csv", "Cannot read countries CSV /nonexistent/countries.csv"),
        ("/dev/zero", "is not a countries CSV (not a regular file (a character device)"),
    ],
)
@pytest.mark.parametrize("command", ["predict", "evaluate", "app"])
def test_a_bad_countries_csv_is_refused_by_every_command(
    command, value, words, tmp_path, monkeypatch, capsys
):
    assert settings.COUNTRIES_CSV_ENV == countries.ENV_VAR == "KERAS_GEO_COUNTRIES_CSV"
    monkeypatch.setenv("KERAS_GEO_COUNTRIES_CSV", value)
    assert main(_argv(command, tmp_path)) == 2
    assert words in _one_line(capsys)


@pytest.mark.parametrize("value", ["inf", "nan", "0", "-1", "86401", "soon"])
def test_the_chief_timeout_has_bounds(value, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KERAS_GEO_CHIEF_TIMEOUT", value)
    assert main(_argv("tune", tmp_path)) == 2
    assert "KERAS_GEO_CHIEF_TIMEOUT must be a number of seconds > 0 and at most 86400" in (
        _one_line(capsys)
    )


@pytest.mark.parametrize(
    "argv, words",
    [
        (["train", "--seed", "99999999999999999999"], "`seed` must be from 0 to 4294967295"),
        (["tune", "--seed", "99999999999999999999"], "`seed` must be from 0 to 4294967295"),
        (["train", "--image-size", "20000"], "`image_size` must be from 32 to 1024"),
        (["train", "--finetune-learning-rate", "inf"], "must be > 0 or None and finite"),
        (["train", "--tau-km", "nan"], "`tau_km` must be > 0 or None and finite"),
    ],
)
def test_extreme_flags_are_one_line(argv, words, tmp_path, capsys):
    assert main([*argv, "--run-dir", str(tmp_path / "run")]) == 2
    assert words in _one_line(capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("value", ["inf", "nan", "1025"])
def test_the_upload_limit_has_bounds(value, tmp_path, capsys):
    assert main(["app", "--model", str(tmp_path), "--max-upload-mb", value]) == 2
    assert "`--max-upload-mb` must be > 0 and at most 1024" in _one_line(capsys)


def test_a_worker_without_its_dispatcher_gives_up_in_one_line(monkeypatch, capsys):
    monkeypatch.setattr(pipeline, "DISPATCHER_WAIT_S", 1.5)
    argv = ["data-service", "worker", "--port", "0", "--dispatcher", "127.0.0.1:1"]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert "waiting for the dispatcher at 127.0.0.1:1" in out
    assert err.startswith("keras-geo: error: --dispatcher 127.0.0.1:1: no dispatcher answers")
    assert err.rstrip().endswith("(waited 1.5 s)") and err.count("\n") == 1


def _big_run(path):
    """A run directory whose model weighs 49 MB (a 3072 x 4000 dense layer)."""
    import keras

    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    x = keras.layers.Dense(4000)(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(len(CLASS_NAMES), activation="softmax")(x))
    path.mkdir()
    config = TrainConfig(image_size=IMAGE_SIZE, weights="none")
    config.to_json(path / runs.CONFIG_FILE)
    runs.write_class_names(path, CLASS_NAMES)
    runs.save_model(model, path / runs.MODEL_FILE, CLASS_NAMES, config)
    return path


@pytest.mark.parametrize("checked_first", [True, False])
def test_a_full_disk_during_export_is_one_line(tmpfs, tmp_path, monkeypatch, capsys, checked_first):
    from keras_geo import paths

    run_dir = _big_run(tmp_path / "run")
    disk = tmpfs("20m")
    if not checked_first:  # The disk fills while TensorFlow writes the variables.
        monkeypatch.setattr(paths, "check_space", lambda path, nbytes: None)
    out = disk / "models" / "1"
    assert main(["export", "--run-dir", str(run_dir), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"keras-geo: error: cannot write {out} (No space left on device")
    assert "free space" in err
    assert [p.name for p in disk.rglob("*") if p.is_file()] == []  # Nothing half-written.


def test_the_page_input_needs_its_workaround(tmp_path):
    """Gradio's own `Image.preprocess` opens the upload; ours hands the path on unopened.

    When the first assertion fails, Gradio no longer opens the file before
    the handler: `keras_geo.compat.gradio_image` can go.
    """
    import gradio as gr
    from gradio.data_classes import ImageData

    from keras_geo.compat import gradio_image

    path = tmp_path / "notes.png"
    path.write_text("not pixels")
    payload = ImageData(path=str(path), orig_name="notes.png")
    with pytest.raises(Exception, match="cannot identify image file"):
        gr.Image(type="filepath").preprocess(payload)
    assert gradio_image.screenshot_input().preprocess(payload) == str(path)
    stub = pathlib.Path(gradio_image.__file__).with_suffix(".pyi")
    assert not stub.exists()  # No subclass: no stub.


def test_predict_json_holds_json(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    config = TrainConfig(image_size=IMAGE_SIZE, weights="none")
    config.to_json(run_dir / runs.CONFIG_FILE)
    runs.write_class_names(run_dir, CLASS_NAMES)
    runs.save_model(tiny_model(), run_dir / runs.MODEL_FILE, CLASS_NAMES, config)
    from PIL import Image

    Image.new("RGB", (40, 30), (1, 2, 3)).save(tmp_path / "a.png")
    assert main(["predict", "--json", "--model", str(run_dir), str(tmp_path / "a.png")]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["predictions"][0]["coordinates"] is not None
