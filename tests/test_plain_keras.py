"""A trained `model.keras` loads for inference with Keras alone (no keras-geo import).

`keras.saving.load_model(path, compile=False)` in a fresh interpreter that
imports `keras` and NumPy only must give the probabilities keras-geo gives.
`compile=False`: the training state names keras-geo's optimizer, loss and
metrics, which only keras-geo registers (docs/serving.md, "Plain Keras").
"""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from keras_geo import phase, runs, training
from keras_geo.config import TrainConfig

# Runs in a fresh interpreter: only Keras and NumPy may be imported.
LOADER_SCRIPT = textwrap.dedent(
    """
    import sys

    import keras
    import numpy as np

    pixels_path, out_path, *model_paths = sys.argv[1:]
    pixels = np.load(pixels_path)
    outputs = {}
    for index, path in enumerate(model_paths):
        model = keras.saving.load_model(path, compile=False)
        outputs[str(index)] = model.predict(pixels, verbose=0)
    imported = sorted(name for name in sys.modules if name.startswith(("keras_geo", "tfds_")))
    assert not imported, f"the loader imported {imported}"
    np.savez(out_path, **outputs)
    """
)


@pytest.fixture(scope="module")
def trained_run(tiny_config, tiny_runtime, tmp_path_factory):
    """A ResNet50 run trained by `training.train` (its caffe preprocessing was a custom layer)."""
    run_dir = tmp_path_factory.mktemp("run")
    training.train(tiny_config(), run_dir, runtime=tiny_runtime, verbose=0, steps_per_epoch=2)
    return run_dir


def saved_as_train_saves(backbone, folder, class_names):
    """A model of `backbone` compiled as `train` compiles it, saved as `train` saves it."""
    config = TrainConfig(backbone=backbone, weights="none", image_size=32, lr_schedule="cosine")
    model = phase.build_phase_model(config, "finetune", class_names, steps_per_epoch=4)
    path = folder / f"{backbone}.keras"
    runs.save_model(model, path, class_names, config)
    return path


def test_trained_models_load_in_a_process_that_imports_only_keras(trained_run, tmp_path):
    model, class_names, _ = runs.load_model(trained_run)
    paths = [trained_run / runs.MODEL_FILE]
    others = ("vgg16", "efficientnetv2b0", "convnext_tiny")  # Each preprocessing kind.
    paths += [saved_as_train_saves(name, tmp_path, class_names) for name in others]
    pixels = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype("float32")
    np.save(tmp_path / "pixels.npy", pixels)
    out = tmp_path / "out.npz"
    done = subprocess.run(
        [sys.executable, "-c", LOADER_SCRIPT, str(tmp_path / "pixels.npy"), str(out)]
        + [str(p) for p in paths],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = np.load(out)
    for index, path in enumerate(paths):
        ours = runs.load_model(path)[0] if index else model
        expected = ours.predict(pixels, verbose=0)
        np.testing.assert_allclose(loaded[str(index)], expected, rtol=0, atol=1e-6)
