"""Export a trained model as a self-contained TensorFlow SavedModel.

The SavedModel takes the raw bytes of screenshots: the image boundary's
checks and decoding (`keras_geo.images.decode_image`: the byte and pixel
budget, the evaluation resize) and the backbone's preprocessing (inside the
Keras model) are all in the graph, so any TensorFlow consumer (TF Serving,
`saved_model_cli`, a script with only `tensorflow` installed) gets countries
back from JPEG or PNG bytes.

Signatures:

- `serving_default(image_bytes)`: `image_bytes` is a 1-D `tf.string` tensor of
  encoded JPEG, PNG, GIF (first frame) or BMP images of any size.
- `serve_pixels(images)`: `images` is a `uint8` tensor `[N, H, W, 3]` of RGB
  pixels, any `H`, `W`.

  Both return `probabilities` `[N, C]` float32 (class order of
  `class_names`), `top_k_countries` `[N, k]` string and `top_k_probabilities`
  `[N, k]` float32, best first, with `k = min(top_k, C)` fixed at export.
- `metadata()` (no input): `class_names` `[C]` string, `coordinates` `[C, 2]`
  float64 (latitude, longitude of each country's centroid, degrees),
  `image_size`, `top_k` and `tta` int32 scalars.

With `tta=N > 1` the exported graph averages the probabilities over N
test-time views (`keras_geo.tta`), exactly as `keras-geo evaluate --tta N`;
the signatures stay the same.

The same metadata is written as plain files under `assets.extra/` (files the
graph never loads, by the SavedModel convention): `class_names.txt` (one name a
line, class order), `countries.csv` (`index,name,latitude,longitude`) and
`keras_geo_export.json`.
"""

import contextlib
import csv
import errno
import json
import pathlib
import re
import shutil

import keras
import numpy as np
import tensorflow as tf

from keras_geo import __version__, countries, paths
from keras_geo.compat import keras_callbacks
from keras_geo.errors import UserError
from keras_geo.images import decode_image, max_pixels, model_input
from keras_geo.tta import with_test_time_views
from tfds_geoguessr.geoguessr import limits

METADATA_DIR = "assets.extra"
EXPORT_RECORD = "keras_geo_export.json"
SIGNATURES = ("serving_default", "serve_pixels", "metadata")


def _map_images(fn, images, image_size):
    spec = tf.TensorSpec([image_size, image_size, 3], tf.float32)
    return tf.map_fn(fn, images, fn_output_signature=spec)


def _outputs(probabilities, class_names, k):
    probabilities = tf.cast(probabilities, tf.float32)
    top_probabilities, top_indices = tf.math.top_k(probabilities, k=k)
    return {
        "probabilities": probabilities,
        "top_k_countries": tf.gather(class_names, top_indices),
        "top_k_probabilities": top_probabilities,
    }


def _endpoints(model, class_names, coordinates, image_size, k, tta):
    """Returns the three `tf.function`s of the SavedModel, by signature name."""
    names = tf.constant(class_names, dtype=tf.string)
    coords = tf.constant(coordinates, dtype=tf.float64)

    @tf.function(
        input_signature=[tf.TensorSpec([None, image_size, image_size, 3], tf.float32)],
        autograph=False,
    )
    def classify(pixels):  # Traced once, called by both serving signatures.
        return _outputs(model(pixels, training=False), names, k)

    @tf.function(
        input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")],
        autograph=False,
    )
    def serve_bytes(image_bytes):
        decode = lambda b: decode_image(b, image_size=image_size)  # noqa: E731
        return classify(_map_images(decode, image_bytes, image_size))

    @tf.function(
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")],
        autograph=False,
    )
    def serve_pixels(images):
        resize = lambda image: model_input(image, image_size)  # noqa: E731
        return classify(_map_images(resize, images, image_size))

    @tf.function(input_signature=[], autograph=False)
    def metadata():
        return {
            "class_names": names,
            "coordinates": coords,
            "image_size": tf.constant(image_size, tf.int32),
            "top_k": tf.constant(k, tf.int32),
            "tta": tf.constant(tta, tf.int32),
        }

    return {
        "serving_default": serve_bytes,
        "serve_pixels": serve_pixels,
        "metadata": metadata,
    }


def check_model(model, class_names, image_size, top_k):
    """Raises `UserError` unless `model` can be exported with these arguments."""
    if top_k < 1:
        raise UserError(f"`top_k` must be >= 1. Received: top_k={top_k}")
    num_outputs = model.output_shape[-1]
    if num_outputs != len(class_names):
        raise UserError(
            f"The model has {num_outputs} outputs but {len(class_names)} class names "
            "were given: export the run directory the model was trained in."
        )
    model_size = model.input_shape[1]
    if model_size is not None and model_size != image_size:
        raise UserError(
            f"`image_size` must match the model input ({model_size}). "
            f"Received: image_size={image_size}"
        )


def export_saved_model(
    model, class_names, out_dir, *, image_size, top_k=5, overwrite=False, tta=1, model_record=None
):
    """Writes `model` as a SavedModel that maps image bytes to countries.

    The model must take float pixels 0-255 `[N, image_size, image_size, 3]`
    and return probabilities `[N, C]`, as `keras_geo.model.build_model` does.
    The SavedModel is written to a temporary sibling directory first and then
    moved to `out_dir`, so a failed export leaves nothing half-written.

    Args:
        model: the Keras model (its own preprocessing inside).
        class_names: the `C` class names, in output order (Kaggle folder
            names, e.g. `["France", "Japan", "United States"]`).
        out_dir: directory to create; it must be absent or empty unless
            `overwrite` (then it must be a previous SavedModel export).
        image_size: side of the square model input, pixels.
        top_k: countries in the `top_k_*` outputs; `k = min(top_k, C)`.
        overwrite: replace an existing SavedModel at `out_dir`.
        tta: test-time views baked into the graph (`keras_geo.tta`); 1: none.
        model_record: what the model is (`keras_geo.model_info`: `dataset`,
            `test` metrics), stored under `model` in `keras_geo_export.json`.

    Returns:
        `out_dir` as a `pathlib.Path`.
    """
    class_names = [str(name) for name in class_names]
    check_model(model, class_names, image_size, top_k)
    max_pixels()  # Traced into the graph below: UserError if the variable is bad.
    model = with_test_time_views(model, tta)
    coordinates = np.asarray(countries.coordinates(class_names), dtype=np.float64)
    k = min(top_k, len(class_names))
    out_dir = pathlib.Path(out_dir)
    check_out_dir(out_dir, overwrite)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(out_dir)
    nbytes = keras_callbacks.weights_nbytes(model)
    paths.check_space(out_dir, nbytes)  # The variables alone; the graph is small.
    with paths.atomic_write(out_dir) as tmp_dir:  # Replaces a previous export whole.
        tmp_dir.mkdir()
        # No `archive.track(model)`: the endpoints' variables are tracked
        # anyway, and walking every layer of ResNet50 doubles the export time.
        archive = keras.export.ExportArchive()
        endpoints = _endpoints(model, class_names, coordinates, image_size, k, tta)
        for name, fn in endpoints.items():
            archive.add_endpoint(name, fn)
        with _disk_full_as_storage_error(out_dir, nbytes):
            archive.write_out(str(tmp_dir), verbose=False)
            info = {"image_size": image_size, "top_k": k, "tta": tta, "model": model_record}
            _write_metadata(tmp_dir / METADATA_DIR, class_names, coordinates, info)
    return out_dir


@contextlib.contextmanager
def _disk_full_as_storage_error(out_dir, nbytes):
    """A disk that fills up while the SavedModel is written: `StorageError`, one line.

    TensorFlow reports a full disk as `ResourceExhaustedError` with no message
    (also its out-of-memory error): it is taken for a full disk when the
    file system has less room left than the variables need.
    """
    try:
        yield
    except tf.errors.ResourceExhaustedError:
        if shutil.disk_usage(out_dir.parent).free >= nbytes:
            raise
        raise paths.storage_error(
            OSError(errno.ENOSPC, "No space left on device"), out_dir
        ) from None
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise
        raise paths.storage_error(error, out_dir) from None


def remove_leftovers(out_dir):
    """Deletes the temporary folders of killed exports to `out_dir`.

    `.tmp-<pid>-<name>` and `.tmp-<pid>-old-<name>` (`paths.atomic_write`), and
    `.<name>.XXXXXXXX` (the exports of earlier versions).
    """
    ours = re.compile(rf"{re.escape(paths.TMP_PREFIX)}\d+-(old-)?{re.escape(out_dir.name)}")
    for path in out_dir.parent.glob(f"{paths.TMP_PREFIX}*-{out_dir.name}"):
        if ours.fullmatch(path.name):  # Not `.tmp-<pid>-other-<name>`, another export's.
            paths.remove_leftovers(out_dir.parent, path.name)
    for path in out_dir.parent.glob(f".{out_dir.name}.{'[a-z0-9_]' * 8}"):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)


def check_out_dir(out_dir, overwrite):
    """Raises `UserError` unless `out_dir` may receive an export.

    `out_dir` may be absent or empty; with `overwrite`, it may also hold a
    SavedModel (`saved_model.pb`), never anything else.
    """
    out_dir = pathlib.Path(out_dir)
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise UserError(f"{out_dir} exists and is not a directory: choose another --out.")
    if not any(out_dir.iterdir()):
        return
    if not overwrite:
        raise UserError(f"{out_dir} is not empty: pass --overwrite or choose another --out.")
    if not (out_dir / "saved_model.pb").is_file():
        raise UserError(
            f"{out_dir} is not a SavedModel (no saved_model.pb): refusing to delete it "
            "even with --overwrite; choose another --out."
        )


def _write_metadata(directory, class_names, coordinates, info):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "class_names.txt").write_text("".join(f"{name}\n" for name in class_names))
    with open(directory / "countries.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["index", "name", "latitude", "longitude"])
        for index, (name, (lat, lon)) in enumerate(zip(class_names, coordinates, strict=True)):
            writer.writerow([index, name, f"{lat:.6f}", f"{lon:.6f}"])
    info = {
        "keras_geo_version": __version__,
        "tensorflow_version": tf.__version__,
        **info,
        "num_classes": len(class_names),
        "max_pixels": limits.max_pixels(),
        "signatures": list(SIGNATURES),
    }
    (directory / EXPORT_RECORD).write_text(json.dumps(info, indent=2) + "\n")


def read_export_record(export_dir):
    """The `keras_geo_export.json` of an export directory as a dict ({} if absent or unreadable)."""
    try:
        record = json.loads((pathlib.Path(export_dir) / METADATA_DIR / EXPORT_RECORD).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def read_metadata(saved_model):
    """Reads the `metadata` signature of a loaded export (`tf.saved_model.load`).

    Returns:
        dict with `class_names` (list of str), `coordinates` (`[C, 2]`
        float64 numpy), `image_size`, `top_k` and `tta` (int; 1 for exports
        older than `tta`).
    """
    values = saved_model.signatures["metadata"]()
    return {
        "class_names": [name.decode("utf-8") for name in values["class_names"].numpy()],
        "coordinates": values["coordinates"].numpy(),
        "image_size": int(values["image_size"]),
        "top_k": int(values["top_k"]),
        "tta": int(values["tta"]) if "tta" in values else 1,
    }
