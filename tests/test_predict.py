"""Tests for `keras_geo.predict` and `keras-geo predict`.

A tiny stand-in model (the model contract: pixels 0-255 in, softmax out) is
saved as a run directory and exported as `models/geo/1`; predict must give the
same answer from both, on good files and despite bad ones.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from train_helpers import write_run

from keras_geo import export, runs
from keras_geo.cli.main import main
from keras_geo.model import CaffePreprocessing

CLASS_NAMES = ["France", "Japan", "United States"]
IMAGE_SIZE = 32


def tiny_model():
    """The model contract with keras_geo's own preprocessing layer (custom class)."""
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    x = CaffePreprocessing()(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(len(CLASS_NAMES), activation="softmax")(x)
    return keras.Model(inputs, outputs)


def gradient(height, width, seed):
    rng = np.random.default_rng(seed)
    pixels = rng.uniform(0, 255, (height, width, 3))
    pixels[..., 0] = np.linspace(0, 255, width)[None, :]
    return tf.constant(pixels.astype(np.uint8))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """`(run_dir, saved_model_base)`: the same weights, two formats."""
    keras.utils.set_random_seed(1)
    model = tiny_model()
    root = tmp_path_factory.mktemp("predict")
    run_dir = write_run(root / "run", model, CLASS_NAMES, IMAGE_SIZE)
    base = root / "models" / "geo"
    export.export_saved_model(model, CLASS_NAMES, base / "1", image_size=IMAGE_SIZE)
    return run_dir, base


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    files = {
        "frame.jpg": tf.io.encode_jpeg(gradient(662, 1536, 0)),  # a real frame's size
        "crop.png": tf.io.encode_png(gradient(224, 224, 1)),
        "notes.jpg": b"these are not pixels\n",
        "empty.png": b"",
        "fake.png": b"\x89PNG\r\n\x1a\n" + b"x" * 40,
    }
    files["cut.jpg"] = files["frame.jpg"].numpy()[:2000]  # truncated JPEG
    for name, data in files.items():
        (folder / name).write_bytes(data.numpy() if hasattr(data, "numpy") else data)
    (folder / "subdir").mkdir()
    return folder


def run_json(capsys, *argv):
    code = main(["predict", "--json", *map(str, argv)])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def test_table_output_from_the_saved_model(models, images, capsys):
    _, base = models
    code = main(["predict", "--model", str(base / "1"), str(images / "frame.jpg")])
    out = capsys.readouterr().out
    assert code == 0
    model_line, blank, *lines = out.strip().splitlines()
    assert model_line == f"Model: {base / '1'}: training data unknown" and not blank
    assert lines[0] == str(images / "frame.jpg")
    assert len(lines) == 1 + len(CLASS_NAMES)  # top 5 clamped to 3 countries
    assert lines[1].lstrip().startswith("1. ") and lines[1].endswith("%")
    assert sorted(line.split(".", 1)[1].split()[0] for line in lines[1:]) == [
        "France",
        "Japan",
        "United",
    ]


def test_saved_model_and_run_dir_agree(models, images, capsys):
    run_dir, base = models
    good = [images / "frame.jpg", images / "crop.png"]
    # The TF Serving base dir resolves to its latest version.
    code_sm, from_sm, _ = run_json(capsys, "--model", base, "--top-k", "2", *good)
    code_keras, from_keras, _ = run_json(
        capsys, "--model", run_dir / runs.MODEL_FILE, "--top-k", "2", *good
    )
    assert code_sm == code_keras == 0
    assert from_sm["errors"] == from_keras["errors"] == []
    for a, b in zip(from_sm["predictions"], from_keras["predictions"], strict=True):
        assert a["file"] == b["file"]
        assert a["countries"] == b["countries"] and len(a["countries"]) == 2
        np.testing.assert_allclose(a["probabilities"], b["probabilities"], atol=1e-5)
        assert a["probabilities"] == sorted(a["probabilities"], reverse=True)
        assert len(a["coordinates"]) == 2 and len(a["coordinates"][0]) == 2


@pytest.mark.parametrize("kind", ["saved_model", "run_dir"])
def test_bad_files_are_reported_and_the_others_predicted(models, images, capsys, kind):
    model_path = models[1] / "1" if kind == "saved_model" else models[0]
    bad = ["notes.jpg", "empty.png", "missing.jpg", "subdir", "fake.png", "cut.jpg"]
    files = [images / "frame.jpg", *(images / name for name in bad), images / "crop.png"]
    code, document, err = run_json(capsys, "--model", model_path, *files)
    assert code == 1
    assert [p["file"] for p in document["predictions"]] == [
        str(images / "frame.jpg"),
        str(images / "crop.png"),
    ]
    assert [e["file"] for e in document["errors"]] == [str(images / n) for n in bad]
    lines = err.strip().splitlines()
    assert len(lines) == len(bad)
    for line, name in zip(lines, bad, strict=True):
        assert line.startswith(f"keras-geo: error: {images / name}: ")
    assert "not an image" in lines[0] and "empty file" in lines[1]
    assert "no such file" in lines[2] and "directory" in lines[3]
    assert "corrupt" in lines[4] and "corrupt" in lines[5]
    assert "Traceback" not in err


@pytest.mark.parametrize("case", ["missing", "plain_dir", "text_file", "no_metadata"])
def test_a_model_path_that_is_neither_is_one_line_exit_2(tmp_path, images, capsys, case):
    if case == "missing":
        path = tmp_path / "nope"
    elif case == "plain_dir":
        path = tmp_path
    elif case == "text_file":
        path = images / "notes.jpg"
    else:  # A SavedModel not written by `keras-geo export`.
        path = tmp_path / "plain"
        tiny_model().export(str(path), verbose=False)
    code = main(["predict", "--model", str(path), str(images / "frame.jpg")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("keras-geo: error: ") and "\n" not in err


def test_top_k_must_be_positive(models, images, capsys):
    code = main(["predict", "--model", str(models[0]), "--top-k", "0", str(images / "crop.png")])
    assert code == 2
    assert "--top-k" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["saved_model", "run_dir"])
def test_a_fresh_process_prints_nothing_on_stderr_for_a_good_image(models, images, kind):
    """No TensorFlow start-up lines (absl, cudart_stub, cuInit), no warning: a clean terminal."""
    model_path = models[1] if kind == "saved_model" else models[0]
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-m", "keras_geo.cli.main", "predict", "--model", str(model_path)]
        + [str(images / "crop.png")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0
    assert result.stderr == ""
    assert str(images / "crop.png") in result.stdout


def test_console_script_exit_code_and_no_traceback(models, images):
    # A fresh process: loading the run's model must register keras_geo's layers.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_geo.cli.main",
            "predict",
            "--model",
            str(models[0]),
            str(images / "crop.png"),
            str(images / "notes.jpg"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"keras-geo: error: {images / 'notes.jpg'}: not an image" in result.stderr
    assert str(images / "crop.png") in result.stdout


def test_a_full_size_frame_and_its_stored_224_copy_get_the_same_answer(models):
    """`predict` squashes a 1536x662 frame as the builder stored its 224x224 copy (PIL)."""
    import io

    from PIL import Image

    from keras_geo import predict

    predictor = predict.load_predictor(models[1] / "1")
    rng = np.random.default_rng(7)
    agree, gaps = 0, []
    for _ in range(12):
        coarse = rng.uniform(0, 255, (12, 24, 3)).astype(np.uint8)
        frame = Image.fromarray(coarse).resize((1536, 662), Image.BICUBIC)
        copy = frame.resize((224, 224), Image.BILINEAR)  # What the dataset stores.
        full, small = (
            predict.probabilities_of(predictor, _encode(image, io)) for image in (frame, copy)
        )
        agree += int(np.argmax(full) == np.argmax(small))
        gaps.append(float(np.abs(full - small).max()))
    assert agree >= 11 and max(gaps) < 0.02, (agree, gaps)


def _encode(image, io):
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
