"""`keras-geo export --format tflite`: LiteRT files that agree with the SavedModel.

One untrained ResNet50 (32 px, `weights=None`, 3 countries) is saved as a run
directory and exported as a SavedModel and as the three LiteRT variants. The
LiteRT interpreter (`ai-edge-litert`) runs each file in a fresh process that
imports neither TensorFlow nor keras-geo, and through `keras-geo predict`;
every variant's top-1 must equal the SavedModel's on every test image, and its
probabilities be within the variant's tolerance (`TOLERANCE`, docs/serving.md).
"""

import io
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from train_helpers import write_run

from keras_geo import litert, predict
from keras_geo.cli import export as cli_export
from keras_geo.cli.main import main
from keras_geo.errors import UserError
from keras_geo.model import build_model
from tfds_geoguessr.geoguessr import synthetic

CLASS_NAMES = ["France", "Japan", "United States"]
IMAGE_SIZE = 32
# Largest |LiteRT - SavedModel| probability allowed, per variant. Measured on these
# images (printed by the test): float32 4.8e-7, float16 2.8e-4, dynamic 7.8e-3.
TOLERANCE = {"none": 1e-5, "float16": 1e-3, "dynamic": 3e-2}

# Runs in a fresh interpreter: LiteRT and NumPy only, as on a phone.
LITERT_SCRIPT = textwrap.dedent(
    """
    import sys

    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    model_path, pixels_path, out_path = sys.argv[1:]
    runner = Interpreter(model_path=model_path).get_signature_runner("serving_default")
    out = runner(images=np.load(pixels_path))
    imported = [m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "keras_geo")]
    assert not imported, f"imported {imported[:3]}"
    np.savez(out_path, **{name: np.asarray(value).astype(
        str if value.dtype == object else value.dtype) for name, value in out.items()})
    """
)


def sample_images():
    """16 encoded images: synthetic scenes at 96 px and at the Kaggle size, and noise."""
    rng = np.random.default_rng(5)
    images = []
    for i in range(12):
        scene = Image.fromarray(synthetic.draw_scene(CLASS_NAMES[i % 3], rng, 96))
        scene = scene.resize((1536, 662)) if i % 2 else scene
        images.append(_encode(scene, "JPEG" if i % 2 else "PNG"))
    for i in range(4):
        noise = rng.integers(0, 256, (120 + 30 * i, 90 + 50 * i, 3), dtype=np.uint8)
        images.append(_encode(Image.fromarray(noise), "PNG"))
    return images


def _encode(image, kind):
    buffer = io.BytesIO()
    image.save(buffer, format=kind)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """The run directory, its SavedModel and its LiteRT files, by quantization."""
    import keras

    keras.utils.set_random_seed(0)
    root = tmp_path_factory.mktemp("litert")
    model = build_model(len(CLASS_NAMES), image_size=IMAGE_SIZE, weights=None)
    run_dir = write_run(root / "run", model, CLASS_NAMES, IMAGE_SIZE)
    saved_model = root / "saved" / "1"
    assert main(["export", "--run-dir", str(run_dir), "--out", str(saved_model)]) == 0
    files = {}
    for quantize in litert.QUANTIZATIONS:
        files[quantize] = root / f"geo-{quantize}.tflite"
        argv = ["export", "--run-dir", str(run_dir), "--out", str(files[quantize])]
        argv += ["--format", "tflite", "--quantize", quantize, "--top-k", "2"]
        assert main(argv) == 0
    return run_dir, saved_model, files


@pytest.mark.parametrize("quantize", litert.QUANTIZATIONS)
def test_litert_agrees_with_the_saved_model(exports, quantize):
    _, saved_model, files = exports
    images = sample_images()
    expected = predict.load_predictor(saved_model).probabilities_batch(images)
    ours = predict.load_predictor(files[quantize])
    assert ours.class_names == CLASS_NAMES and ours.image_size == IMAGE_SIZE
    batch = ours.probabilities_batch(images)
    one_by_one = np.stack([ours.probabilities(image) for image in images])
    difference = float(np.abs(batch - expected).max())
    print(f"{quantize}: max |LiteRT - SavedModel| = {difference:.2g}")
    assert batch.argmax(axis=1).tolist() == expected.argmax(axis=1).tolist()
    assert difference <= TOLERANCE[quantize]
    np.testing.assert_allclose(one_by_one, batch, rtol=0, atol=1e-6)


def test_quantized_files_are_smaller(exports):
    sizes = {quantize: path.stat().st_size for quantize, path in exports[2].items()}
    assert sizes["float16"] < 0.55 * sizes["none"]
    assert sizes["dynamic"] < 0.3 * sizes["none"]


def test_a_fresh_litert_process_runs_the_file(exports, tmp_path):
    _, _, files = exports
    images = sample_images()[:3]
    ours = predict.load_predictor(files["none"])
    pixels = np.stack([ours.pixels(image) for image in images])
    np.save(tmp_path / "pixels.npy", pixels)
    out = tmp_path / "out.npz"
    done = subprocess.run(
        [sys.executable, "-c", LITERT_SCRIPT, str(files["none"]), str(tmp_path / "pixels.npy")]
        + [str(out)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = np.load(out)
    expected = ours.probabilities_batch(images)
    np.testing.assert_allclose(result["probabilities"], expected, rtol=0, atol=1e-6)
    assert result["class_names"].tolist() == CLASS_NAMES
    order = np.argsort(-expected, axis=1)[:, :2]
    assert result["top_k_countries"].tolist() == np.array(CLASS_NAMES)[order].tolist()
    np.testing.assert_allclose(
        result["top_k_probabilities"], np.take_along_axis(expected, order, 1), atol=1e-6
    )


def test_predict_and_the_app_run_a_tflite_file(exports, tmp_path, capsys):
    run_dir, _, files = exports
    path = tmp_path / "shot.jpg"
    path.write_bytes(sample_images()[1])
    assert main(["predict", "--model", str(files["float16"]), "--json", str(path)]) == 0
    printed = capsys.readouterr().out
    keras_answer = predict.predict_file(predict.load_predictor(run_dir), path, top_k=3)
    assert f'"{keras_answer["countries"][0]}"' in printed.split('"countries": [')[1]

    from keras_geo.app import server

    predictor = predict.load_predictor(files["none"])
    state = server.make_state(predictor, model_name="tiny.tflite", top_k=3)
    try:
        with TestClient(server.build_app(state)) as client:
            answer = client.post("/api/predict", files={"image": ("shot.jpg", path.read_bytes())})
        assert answer.status_code == 200
        assert answer.json()["countries"] == keras_answer["countries"]
        np.testing.assert_allclose(
            answer.json()["probabilities"], keras_answer["probabilities"], atol=1e-5
        )
    finally:
        state.close()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--out", "geo.zip"], "must end with .tflite"),
        (["--tta", "3"], "--tta 3: a LiteRT export has no test-time views"),
        (["--quantize", "float16", "--format", "savedmodel"], "applies to --format tflite only"),
    ],
)
def test_bad_export_flags_are_one_line_errors(exports, tmp_path, capsys, flags, message):
    run_dir = exports[0]
    argv = ["export", "--run-dir", str(run_dir), "--out", str(tmp_path / "geo.tflite")]
    argv += ["--format", "tflite"]
    assert main([*argv, *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_an_existing_file_needs_overwrite_and_a_bad_file_is_refused(exports, tmp_path, capsys):
    run_dir, _, files = exports
    argv = ["export", "--run-dir", str(run_dir), "--out", str(files["none"]), "--format", "tflite"]
    assert main(argv) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    bad = tmp_path / "notes.tflite"
    bad.write_text("not a flatbuffer")
    with pytest.raises(UserError, match="Cannot run .*notes.tflite as a keras-geo LiteRT export"):
        predict.load_predictor(bad)
    with pytest.raises(UserError, match="no test-time views"):
        predict.load_predictor(files["none"], tta=2)


def test_the_cli_offers_the_library_quantizations():
    assert cli_export.QUANTIZATIONS == litert.QUANTIZATIONS


def test_the_readmes_litert_snippet_runs_with_litert_alone(exports, tmp_path):
    import pathlib
    import re

    readme = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "serving.md").read_text()
    section = readme[readme.index("With LiteRT alone, as on a") :]
    snippet = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    shot = tmp_path / "shot.jpg"
    shot.write_bytes(sample_images()[1])  # A 1536x662 JPEG.
    snippet = snippet.replace("models/geo.tflite", str(exports[2]["none"]))
    snippet = snippet.replace('"shot.jpg"', repr(str(shot)))
    done = subprocess.run(
        [sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    printed = re.findall(r"b'([^']+)'", done.stdout)
    expected = predict.predict_file(predict.load_predictor(exports[2]["none"]), shot, top_k=2)
    assert printed == expected["countries"]  # PIL's resize, not TensorFlow's: same top-k here.
