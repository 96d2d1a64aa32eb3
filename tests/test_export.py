"""Tests for `keras_geo.export` and `keras-geo export`.

One untrained ResNet50 (32 px, `weights=None`, 3 real countries) is saved as
a run directory and exported once through the CLI; the SavedModel is then
called from a fresh Python process that imports TensorFlow only.
"""

import json
import pathlib
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from train_helpers import write_run

from keras_geo import countries, export, pipeline, runs
from keras_geo.cli.main import main
from keras_geo.errors import UserError
from keras_geo.model import build_model

CLASS_NAMES = ["France", "Japan", "United States"]
IMAGE_SIZE = 32

# Runs in a fresh interpreter: only TensorFlow and NumPy may be imported.
CONSUMER_SCRIPT = textwrap.dedent(
    """
    import sys

    import numpy as np
    import tensorflow as tf

    export_dir, out_path, *files = sys.argv[1:]
    model = tf.saved_model.load(export_dir)
    serve = model.signatures["serving_default"]
    encoded = [open(f, "rb").read() for f in files]
    batch = serve(image_bytes=tf.constant(encoded))
    one_by_one = [
        serve(image_bytes=tf.constant([b]))["probabilities"].numpy()[0] for b in encoded
    ]
    pixels = tf.io.decode_image(encoded[0], channels=3, expand_animations=False)
    from_pixels = model.signatures["serve_pixels"](images=pixels[tf.newaxis])
    metadata = model.signatures["metadata"]()
    assert "keras_geo" not in sys.modules, "the consumer imported keras_geo"
    assert "keras_tuner" not in sys.modules, "the consumer imported keras_tuner"
    np.savez(
        out_path,
        probabilities=batch["probabilities"].numpy(),
        top_k_countries=batch["top_k_countries"].numpy().astype(str),
        top_k_probabilities=batch["top_k_probabilities"].numpy(),
        one_by_one=np.stack(one_by_one),
        from_pixels=from_pixels["probabilities"].numpy(),
        class_names=metadata["class_names"].numpy().astype(str),
        coordinates=metadata["coordinates"].numpy(),
        image_size=metadata["image_size"].numpy(),
        top_k=metadata["top_k"].numpy(),
    )
    """
)


def encode_image(kind, height, width, seed=0):
    """JPEG or PNG bytes of a noisy colour gradient, `height` x `width`."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 255, height)[:, None, None]
    x = np.linspace(0, 255, width)[None, :, None]
    pixels = np.concatenate(
        [
            np.broadcast_to(y, (height, width, 1)),
            np.broadcast_to(x, (height, width, 1)),
            rng.uniform(0, 255, (height, width, 1)),
        ],
        axis=-1,
    )
    pixels = tf.constant(pixels.astype(np.uint8))
    encoded = tf.io.encode_jpeg(pixels) if kind == "jpeg" else tf.io.encode_png(pixels)
    return encoded.numpy()


def keras_probabilities(model, encoded):
    """The Keras model's probabilities on the decoded, eval-resized pixels."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    pixels = pipeline.resize_for_eval(image, image_size=IMAGE_SIZE)
    return model(pixels[tf.newaxis], training=False).numpy()[0]


def tiny_model(num_classes=3, image_size=IMAGE_SIZE):
    """A stand-in with the model contract: pixels 0-255 in, softmax out."""
    inputs = keras.Input((image_size, image_size, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = build_model(len(CLASS_NAMES), image_size=IMAGE_SIZE, weights=None)
    return write_run(tmp_path_factory.mktemp("run"), model, CLASS_NAMES, IMAGE_SIZE)


@pytest.fixture(scope="module")
def exported(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "geo" / "1"
    code = main(["export", "--model", str(run_dir), "--out", str(out), "--top-k", "2"])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def keras_model(run_dir):
    model, class_names, _ = runs.load_model(run_dir)
    assert class_names == CLASS_NAMES
    return model


def test_fresh_tensorflow_process_matches_keras(exported, keras_model, tmp_path):
    images = {
        "frame.jpg": encode_image("jpeg", 662, 1536, seed=1),  # a real frame's size
        "small.jpg": encode_image("jpeg", 50, 40, seed=2),
        "shot.png": encode_image("png", 120, 90, seed=3),
        "exact.png": encode_image("png", IMAGE_SIZE, IMAGE_SIZE, seed=4),
    }
    files = []
    for name, encoded in images.items():
        (tmp_path / name).write_bytes(encoded)
        files.append(str(tmp_path / name))
    out = tmp_path / "out.npz"
    subprocess.run(
        [sys.executable, "-c", CONSUMER_SCRIPT, str(exported), str(out), *files],
        check=True,
        capture_output=True,
        text=True,
    )
    result = np.load(out)
    expected = np.stack([keras_probabilities(keras_model, b) for b in images.values()])

    np.testing.assert_allclose(result["probabilities"], expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(result["one_by_one"], expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(result["from_pixels"], expected[:1], rtol=0, atol=1e-5)
    order = np.argsort(-expected, axis=1)[:, :2]
    assert result["top_k_countries"].tolist() == np.array(CLASS_NAMES)[order].tolist()
    np.testing.assert_allclose(
        result["top_k_probabilities"], np.take_along_axis(expected, order, 1), atol=1e-5
    )
    assert result["class_names"].tolist() == CLASS_NAMES
    np.testing.assert_allclose(result["coordinates"], countries.coordinates(CLASS_NAMES))
    assert int(result["image_size"]) == IMAGE_SIZE
    assert int(result["top_k"]) == 2


def test_saved_model_cli_lists_the_signatures(exported):
    cli = pathlib.Path(sys.executable).parent / "saved_model_cli"
    shown = subprocess.run(
        [str(cli), "show", "--dir", str(exported), "--all"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for signature in ("serving_default", "serve_pixels", "metadata"):
        assert f"signature_def['{signature}']" in shown
    for tensor in (
        "image_bytes",
        "images",
        "probabilities",
        "top_k_countries",
        "top_k_probabilities",
        "class_names",
        "coordinates",
    ):
        assert f"['{tensor}']" in shown


def test_metadata_files_in_assets_extra(exported):
    extra = exported / export.METADATA_DIR
    assert (extra / "class_names.txt").read_text().splitlines() == CLASS_NAMES
    rows = (extra / "countries.csv").read_text().splitlines()
    assert rows[0] == "index,name,latitude,longitude"
    expected = countries.coordinates(CLASS_NAMES)
    for index, row in enumerate(rows[1:]):
        position, name, lat, lon = row.split(",")
        assert (int(position), name) == (index, CLASS_NAMES[index])
        np.testing.assert_allclose([float(lat), float(lon)], expected[index], atol=1e-6)
    info = json.loads((extra / "keras_geo_export.json").read_text())
    assert info["image_size"] == IMAGE_SIZE
    assert info["top_k"] == 2
    assert info["num_classes"] == 3


def test_decode_image_eager_and_in_tf_data():
    encoded = encode_image("jpeg", 70, 150)
    eager = export.decode_image(tf.constant(encoded), image_size=IMAGE_SIZE)
    assert eager.shape == (IMAGE_SIZE, IMAGE_SIZE, 3) and eager.dtype == tf.float32
    ds = tf.data.Dataset.from_tensor_slices([encoded])
    mapped = next(iter(ds.map(lambda b: export.decode_image(b, image_size=IMAGE_SIZE))))
    np.testing.assert_array_equal(eager.numpy(), mapped.numpy())


def test_export_clamps_k_and_overwrites_only_with_the_flag(tmp_path):
    model, out = tiny_model(), tmp_path / "export"
    export.export_saved_model(model, CLASS_NAMES, out, image_size=IMAGE_SIZE, top_k=5)
    loaded = tf.saved_model.load(str(out))
    assert export.read_metadata(loaded)["top_k"] == 3  # min(5, C)
    with pytest.raises(UserError, match="--overwrite"):
        export.export_saved_model(model, CLASS_NAMES, out, image_size=IMAGE_SIZE)
    export.export_saved_model(
        model, CLASS_NAMES, out, image_size=IMAGE_SIZE, top_k=1, overwrite=True
    )
    loaded = tf.saved_model.load(str(out))
    assert export.read_metadata(loaded)["top_k"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["export"]  # no temporary dir left


def test_overwrite_refuses_a_directory_that_is_not_a_saved_model(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="not a SavedModel"):
        export.export_saved_model(
            tiny_model(), CLASS_NAMES, tmp_path, image_size=IMAGE_SIZE, overwrite=True
        )
    assert (tmp_path / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"top_k": 0}, "`top_k` must be >= 1"),
        ({"class_names": ["France", "Japan"]}, "3 outputs but 2 class names"),
        ({"image_size": 64}, "must match the model input"),
    ],
)
def test_export_validates_arguments(tmp_path, kwargs, message):
    args = {"class_names": CLASS_NAMES, "image_size": IMAGE_SIZE, **kwargs}
    with pytest.raises(UserError, match=message):
        export.export_saved_model(tiny_model(), out_dir=tmp_path / "out", **args)
    assert not (tmp_path / "out").exists()


def test_cli_refuses_a_non_empty_out_dir(run_dir, tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("x")
    code = main(["export", "--model", str(run_dir), "--out", str(tmp_path)])
    assert code == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").exists()


@pytest.mark.parametrize("case", ["missing", "out_is_run_dir", "bad_top_k"])
def test_cli_rejects_bad_arguments_in_one_line(run_dir, tmp_path, capsys, case):
    argv = {
        "missing": ["--model", str(tmp_path / "nope"), "--out", str(tmp_path / "o")],
        "out_is_run_dir": ["--run-dir", str(run_dir), "--out", str(run_dir), "--overwrite"],
        "bad_top_k": ["--run-dir", str(run_dir), "--out", str(tmp_path / "o"), "--top-k", "0"],
    }[case]
    assert main(["export", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("keras-geo: error: ") and "\n" not in err
    assert (run_dir / runs.MODEL_FILE).is_file()


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "Input is empty"),
        (b"hello", "Unknown image file format"),
        (b"x" * 11, "Unknown image file format"),
        (b"x" * 12, "Unknown image file format"),
        (b"BM", "Incomplete bmp content"),
    ],
)
def test_short_inputs_get_the_decoders_error_not_substrs(exported, data, words):
    # Inputs shorter than a header once failed in the header check's `Substr`
    # with "pos 12 out of range for string".
    serve = tf.saved_model.load(str(exported)).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        serve(image_bytes=tf.constant([data]))
    assert words in error.value.message
    assert "out of range" not in error.value.message
