"""Name the countries of image files with an exported model or a Keras model.

`load_predictor(path)` accepts what `keras-geo export` wrote (a directory with
`saved_model.pb`, or a TF Serving base directory with numbered versions; or a
`.tflite` file, run with LiteRT), a run directory or a `.keras` file (both
through `keras_geo.runs.load_model`). Every kind checks, decodes and resizes
at the image boundary (`keras_geo.images`: `check_image_bytes`, then
`decode_image`, in the SavedModel's graph or here), so they give the same
probabilities for the same bytes (a quantized LiteRT file: close to them).
`predict_bytes` is the one path from encoded bytes to the answer document,
shared by `keras-geo predict` and `keras-geo app`.
"""

import os
import pathlib
import typing
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from keras_geo import bundled, countries, divergence, model_info, runs
from keras_geo.errors import UserError, one_line
from keras_geo.export import read_export_record, read_metadata
from keras_geo.images import check_image_bytes, decode_errors, decode_image, max_pixels
from keras_geo.tta import check_views, with_test_time_views
from tfds_geoguessr.geoguessr import limits

MODEL_KINDS = (
    "an exported SavedModel directory (with saved_model.pb), a .tflite file, a run "
    "directory (with config.json) or a .keras file"
)


@typing.runtime_checkable
class Predictor(typing.Protocol):
    """What answers for a model: the SavedModel, Keras and LiteRT predictors, the app's batcher.

    Attributes:
        class_names: the `C` class names, in probability order.
        coordinates: `[C, 2]` latitude, longitude of each class, or None.
        info: what the model is (`keras_geo.model_info.ModelInfo`).
        tta: the test-time views each image gets (`keras_geo.tta`).
    """

    class_names: list[str]
    coordinates: typing.Any
    info: model_info.ModelInfo
    tta: int

    def probabilities(self, image_bytes: bytes) -> np.ndarray:
        """Returns the `[C]` float32 probabilities of one encoded image."""

    def probabilities_batch(self, images: Sequence[bytes]) -> np.ndarray:
        """Returns the `[N, C]` float32 probabilities of N encoded images."""


class SavedModelPredictor:
    """Calls the `serving_default` signature of a `keras-geo export` SavedModel.

    Test-time views are baked in at export: `tta` must be None or the export's.
    `info` (`keras_geo.model_info.ModelInfo`) is what the export recorded of
    its run, shown under `name` (default: the path).
    """

    def __init__(self, path, tta=None, *, name=None):
        try:
            loaded = tf.saved_model.load(str(path))
        except Exception as error:  # noqa: BLE001 (any load failure is the user's file)
            raise UserError(f"Cannot load the SavedModel {path}: {one_line(error)}") from None
        if "metadata" not in loaded.signatures:
            raise UserError(
                f"{path} has no `metadata` signature: export the model with `keras-geo export`."
            )
        self._serve = loaded.signatures["serving_default"]
        metadata = read_metadata(loaded)
        if tta is not None and tta != metadata["tta"]:
            raise UserError(
                f"{path} was exported with --tta {metadata['tta']}: test-time views are "
                f"baked in at export; re-export with `keras-geo export --tta {tta}` or "
                "predict from the run directory"
            )
        self.tta = metadata["tta"]
        self.class_names = metadata["class_names"]
        self.coordinates = metadata["coordinates"]
        self.info = model_info.from_export_record(
            read_export_record(path).get("model"), name=name or str(path)
        )
        self._loaded = loaded  # Keeps the variables alive.

    def probabilities(self, image_bytes):
        """Returns the `[C]` float32 probabilities of one encoded image."""
        return self.probabilities_batch([image_bytes])[0]

    def probabilities_batch(self, images):
        """Returns the `[N, C]` float32 probabilities of N encoded images, one model call."""
        outputs = self._serve(image_bytes=tf.constant(list(images)))
        return outputs["probabilities"].numpy()


class KerasPredictor:
    """Decodes and resizes as the export does, then calls the Keras model.

    `info`: what the model is (`keras_geo.model_info.ModelInfo`); default: unnamed.
    """

    def __init__(self, model, class_names, image_size, tta=1, info=None):
        self.info = info or model_info.ModelInfo(name=model.name)
        self.model = with_test_time_views(model, tta)
        self.tta = tta
        self.class_names = list(class_names)
        self.image_size = image_size
        self.coordinates = _coordinates_or_none(self.class_names)
        # One traced graph for every batch size (the app batches), not an eager call each time.
        spec = tf.TensorSpec([None, image_size, image_size, 3], tf.float32)
        self._classify = tf.function(
            lambda pixels: self.model(pixels, training=False), input_signature=[spec]
        )
        # Traced too: a GIF's first-frame cut is a loop, slow step by step in eager mode.
        self._decode = tf.function(
            lambda image_bytes: decode_image(image_bytes, image_size=image_size),
            input_signature=[tf.TensorSpec([], tf.string)],
        )

    def probabilities(self, image_bytes):
        """Returns the `[C]` float32 probabilities of one encoded image."""
        return self.probabilities_batch([image_bytes])[0]

    def probabilities_batch(self, images):
        """Returns the `[N, C]` float32 probabilities of N encoded images, one model call."""
        return self.classify(tf.stack([self.pixels(image_bytes) for image_bytes in images]))

    def classify(self, pixels):
        """Returns the `[N, C]` float32 probabilities of `[N, S, S, 3]` model-input pixels."""
        return np.asarray(self._classify(pixels), dtype=np.float32)

    def pixels(self, image_bytes):
        """Returns the `[S, S, 3]` float32 model input of one encoded image."""
        return self._decode(tf.constant(image_bytes))


class LiteRTPredictor:
    """Runs a `keras-geo export --format tflite` file with the LiteRT interpreter.

    Decodes and resizes as the SavedModel does (`decode_image`), then calls
    the file's `serving_default` signature on the `[N, S, S, 3]` pixels.
    Needs `ai-edge-litert` (the `litert` extra). Test-time views are not in
    LiteRT exports: `tta` must be None or 1.
    """

    def __init__(self, path, tta=None):
        if tta not in (None, 1):
            raise UserError(
                f"--tta {tta}: a .tflite export has no test-time views; predict from "
                "the run directory or a SavedModel exported with --tta"
            )
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise UserError(
                f"--model {path}: running a .tflite file needs ai-edge-litert: "
                "pip install 'keras-geo[litert]' (in a clone: pip install -e '.[litert]')."
            ) from None
        try:
            interpreter = Interpreter(model_path=str(path), num_threads=_cpu_count())
            self._runner = interpreter.get_signature_runner("serving_default")
            shape = self._runner.get_input_details()["images"]["shape_signature"]
            self.image_size = int(shape[1])
            empty = np.zeros((1, self.image_size, self.image_size, 3), np.float32)
            names = self._runner(images=empty)["class_names"]
        except Exception as error:  # noqa: BLE001 (any failure is the user's file)
            raise UserError(
                f"Cannot run {path} as a keras-geo LiteRT export: {one_line(error)}"
            ) from None
        self._interpreter = interpreter  # The runner needs it alive.
        self.info = model_info.ModelInfo(name=str(path))  # A .tflite file records no run.
        self.tta = 1
        self.class_names = [name.decode("utf-8") for name in names]
        self.coordinates = _coordinates_or_none(self.class_names)

    def probabilities(self, image_bytes):
        """Returns the `[C]` float32 probabilities of one encoded image."""
        return self.probabilities_batch([image_bytes])[0]

    def probabilities_batch(self, images):
        """Returns the `[N, C]` float32 probabilities of N encoded images, one model call."""
        pixels = np.stack([self.pixels(image_bytes) for image_bytes in images])
        return np.asarray(self._runner(images=pixels)["probabilities"], dtype=np.float32)

    def pixels(self, image_bytes):
        """Returns the `[S, S, 3]` float32 model input of one encoded image."""
        return decode_image(tf.constant(image_bytes), image_size=self.image_size).numpy()


def _cpu_count():
    """The CPUs this process may use (LiteRT's own default is one thread)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _coordinates_or_none(class_names):
    try:
        return countries.coordinates(class_names)
    except UserError:
        return None


def _saved_model_dir(path):
    """Returns the SavedModel directory at `path` (or its latest version), else None."""
    if (path / "saved_model.pb").is_file():
        return path
    versions = [p for p in path.iterdir() if p.name.isdigit() and (p / "saved_model.pb").is_file()]
    return max(versions, key=lambda p: int(p.name)) if versions else None


def load_predictor(path=None, tta=None):
    """Loads a SavedModel export, a `.tflite` export, a run directory or a `.keras` file.

    Args:
        path: What to load; None: the model bundled with keras-geo
            (`keras_geo.bundled`).
        tta: Test-time views (`keras_geo.tta`) for a Keras model (None: 1);
            a SavedModel has its own, fixed at export (None: those); a
            `.tflite` file has none (None or 1).

    Raises:
        UserError: `path` is none of those, or cannot be loaded.
    """
    if tta is not None:
        check_views(tta)
    if path is None:
        return _bundled_predictor(tta)
    path = pathlib.Path(path)
    if not path.exists():
        raise UserError(f"--model {path} does not exist: pass {MODEL_KINDS}.")
    if path.suffix == ".tflite" and path.is_file():
        return LiteRTPredictor(path, tta)
    if path.is_dir():
        saved_model = _saved_model_dir(path)
        if saved_model is not None:
            return SavedModelPredictor(saved_model, tta)
        if not any((path / name).is_file() for name in ("config.json", "class_names.json")):
            raise UserError(f"--model {path} is not {MODEL_KINDS}.")
    elif path.suffix != ".keras":
        raise UserError(f"--model {path} is not {MODEL_KINDS}.")
    return _keras_predictor(path, tta or 1)


def _bundled_predictor(tta):
    directory = bundled.path()  # Checks every file first: a damaged one is named.
    try:
        return SavedModelPredictor(directory, tta, name=bundled.NAME)
    except UserError as error:
        raise UserError(f"{error}; {bundled.REINSTALL}") from None


def _keras_predictor(path, tta):
    model, class_names, config = runs.load_model(path)
    image_size = model.input_shape[1] or getattr(config, "image_size", None)
    info = model_info.from_run(path, config=config)
    return KerasPredictor(model, class_names, image_size, tta, info)


def predict_file(predictor, path, *, top_k=5):
    """Predicts one image file.

    Returns:
        dict with `file`, `countries` and `probabilities` (best first, at most
        `top_k` each) and `coordinates` (`[lat, lon]` per country, or None).

    Raises:
        ValueError: the file is missing, unreadable or not an image (one-line message).
    """
    return predict_bytes(predictor, _read_file(path), file=str(path), top_k=top_k)


def predict_bytes(predictor, image_bytes, *, file, top_k=5):
    """Predicts one encoded image; the document of `predict_file`, named `file`.

    Raises:
        ValueError: the bytes are not an image, a corrupt one or too large (one line).
    """
    probabilities = probabilities_of(predictor, image_bytes)
    return describe(predictor, probabilities, file=file, top_k=top_k)


def probabilities_of(predictor, image_bytes):
    """Checks and decodes one encoded image; returns its `[C]` probabilities.

    Raises:
        ValueError: the bytes are not an image, a corrupt one or too large (one line).
    """
    check_image_bytes(image_bytes)
    with decode_errors():  # The graph's own budget (a SavedModel's: its export's) or corrupt.
        probabilities = predictor.probabilities(image_bytes)
    divergence.check_probabilities(probabilities)
    return probabilities


def describe(predictor, probabilities, *, file, top_k=5):
    """The answer document for one image's `[C]` probabilities (best `top_k` first).

    Example:
        With classes `["France", "Japan"]` and probabilities `[0.2, 0.8]`,
        `describe(p, probs, file="a.jpg", top_k=1)` gives `{"file": "a.jpg",
        "countries": ["Japan"], "probabilities": [0.8], "coordinates": [[36.0, 138.0]]}`.
    """
    order = np.argsort(-probabilities, kind="stable")[:top_k]
    coordinates = predictor.coordinates
    return {
        "file": file,
        "countries": [predictor.class_names[i] for i in order],
        "probabilities": [float(probabilities[i]) for i in order],
        "coordinates": None
        if coordinates is None
        else [[float(coordinates[i][0]), float(coordinates[i][1])] for i in order],
    }


def _read_file(path):
    """Returns the bytes of a file, read within the byte budget; ValueError (one line) otherwise."""
    try:
        return limits.read_file(path, limits.max_file_bytes(max_pixels()))
    except FileNotFoundError:
        raise ValueError("no such file") from None
    except IsADirectoryError:
        raise ValueError("is a directory, not an image file") from None
    except OSError as error:
        raise ValueError(f"cannot read: {error.strerror or error}") from None


def predict_files(predictor, paths, *, top_k=5):
    """Predicts every file; a bad file becomes an error entry, the others go on.

    Returns:
        `(predictions, errors)`: lists of `predict_file` dicts and of
        `{"file": ..., "error": ...}` dicts.
    """
    predictions, errors = [], []
    for path in paths:
        try:
            predictions.append(predict_file(predictor, path, top_k=top_k))
        except ValueError as error:
            errors.append({"file": str(path), "error": str(error)})
    return predictions, errors


def format_table(predictions):
    """Formats predictions as a readable text table, one block per file.

    Example:
        screenshot.jpg
           1. United States   61.2%
           2. Canada          12.0%
    """
    blocks = []
    for prediction in predictions:
        width = max((len(name) for name in prediction["countries"]), default=0)
        lines = [prediction["file"]]
        for rank, (name, p) in enumerate(
            zip(prediction["countries"], prediction["probabilities"], strict=True),
            start=1,
        ):
            lines.append(f"  {rank:>2}. {name:<{width}}  {100 * p:5.1f}%")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
