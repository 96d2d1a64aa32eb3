"""Name the countries of image files with an exported SavedModel or a Keras model.

`load_predictor(path)` accepts what `keras-geo export` wrote (a directory with
`saved_model.pb`, or a TF Serving base directory with numbered versions), a
run directory or a `.keras` file (both through `keras_geo.runs.load_model`).
Both kinds decode and resize with `keras_geo.export.decode_image`, so they
give the same probabilities for the same bytes.
"""

import pathlib

import numpy as np
import tensorflow as tf

from keras_geo.errors import UserError, one_line

# File signatures of the formats `tf.io.decode_image` reads (WebP: RIFF....WEBP).
IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")
MODEL_KINDS = (
    "an exported SavedModel directory (with saved_model.pb), a run directory "
    "(with config.json) or a .keras file"
)


class SavedModelPredictor:
    """Calls the `serving_default` signature of a `keras-geo export` SavedModel.

    Test-time views are baked in at export: `tta` must be None or the export's.
    """

    def __init__(self, path, tta=None):
        from keras_geo.export import read_metadata

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
        self._loaded = loaded  # Keeps the variables alive.

    def probabilities(self, image_bytes):
        """Returns the `[C]` float32 probabilities of one encoded image."""
        outputs = self._serve(image_bytes=tf.constant([image_bytes]))
        return outputs["probabilities"].numpy()[0]


class KerasPredictor:
    """Decodes and resizes as the export does, then calls the Keras model."""

    def __init__(self, model, class_names, image_size, tta=1):
        from keras_geo.tta import with_test_time_views

        self.model = with_test_time_views(model, tta)
        self.tta = tta
        self.class_names = list(class_names)
        self.image_size = image_size
        self.coordinates = _coordinates_or_none(self.class_names)

    def probabilities(self, image_bytes):
        """Returns the `[C]` float32 probabilities of one encoded image."""
        from keras_geo.export import decode_image

        pixels = decode_image(tf.constant(image_bytes), image_size=self.image_size)
        probabilities = self.model(pixels[tf.newaxis], training=False)
        return np.asarray(probabilities, dtype=np.float32)[0]


def _coordinates_or_none(class_names):
    from keras_geo import countries

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


def load_predictor(path, tta=None):
    """Loads a SavedModel export, a run directory or a `.keras` file.

    Args:
        path: What to load.
        tta: Test-time views (`keras_geo.tta`) for a Keras model (None: 1);
            a SavedModel has its own, fixed at export (None: those).

    Raises:
        UserError: `path` is none of those, or cannot be loaded.
    """
    from keras_geo.tta import check_views

    if tta is not None:
        check_views(tta)
    path = pathlib.Path(path)
    if not path.exists():
        raise UserError(f"--model {path} does not exist: pass {MODEL_KINDS}.")
    if path.is_dir():
        saved_model = _saved_model_dir(path)
        if saved_model is not None:
            return SavedModelPredictor(saved_model, tta)
        if not any((path / name).is_file() for name in ("config.json", "class_names.json")):
            raise UserError(f"--model {path} is not {MODEL_KINDS}.")
    elif path.suffix != ".keras":
        raise UserError(f"--model {path} is not {MODEL_KINDS}.")
    return _keras_predictor(path, tta or 1)


def _keras_predictor(path, tta):
    from keras_geo import runs

    model, class_names, config = runs.load_model(path)
    image_size = model.input_shape[1] or getattr(config, "image_size", None)
    return KerasPredictor(model, class_names, image_size, tta)


def predict_file(predictor, path, *, top_k=5):
    """Predicts one image file.

    Returns:
        dict with `file`, `countries` and `probabilities` (best first, at most
        `top_k` each) and `coordinates` (`[lat, lon]` per country, or None).

    Raises:
        ValueError: the file is missing, unreadable or not an image (one-line message).
    """
    image_bytes = _read_image_file(path)
    try:
        probabilities = predictor.probabilities(image_bytes)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError):
        raise ValueError("corrupt or truncated image: the decoder failed") from None
    order = np.argsort(-probabilities, kind="stable")[:top_k]
    coordinates = predictor.coordinates
    return {
        "file": str(path),
        "countries": [predictor.class_names[i] for i in order],
        "probabilities": [float(probabilities[i]) for i in order],
        "coordinates": None
        if coordinates is None
        else [[float(coordinates[i][0]), float(coordinates[i][1])] for i in order],
    }


def _read_image_file(path):
    """Returns the bytes of an image file; ValueError (one line) otherwise."""
    try:
        image_bytes = pathlib.Path(path).read_bytes()
    except FileNotFoundError:
        raise ValueError("no such file") from None
    except IsADirectoryError:
        raise ValueError("is a directory, not an image file") from None
    except OSError as error:
        raise ValueError(f"cannot read: {error.strerror or error}") from None
    if not image_bytes:
        raise ValueError("empty file, not an image")
    if not image_bytes.startswith(IMAGE_SIGNATURES) and image_bytes[8:12] != b"WEBP":
        raise ValueError("not an image (JPEG, PNG, GIF, BMP or WebP expected)")
    return image_bytes


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
