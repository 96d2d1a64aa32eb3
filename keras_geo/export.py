"""Export a trained model as a self-contained TensorFlow SavedModel.

The SavedModel takes the raw bytes of screenshots: decoding, the evaluation
resize (`keras_geo.pipeline.resize_for_eval`, the very function evaluation
uses) and the backbone's preprocessing (inside the Keras model) are all in
the graph, so any TensorFlow consumer (TF Serving, `saved_model_cli`, a script
with only `tensorflow` installed) gets countries back from JPEG or PNG bytes.

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
import os
import pathlib
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from keras_geo import __version__, animation, countries, paths, pipeline
from keras_geo.compat import keras_callbacks
from keras_geo.errors import UserError
from keras_geo.tta import with_test_time_views
from tfds_geoguessr.geoguessr import limits

METADATA_DIR = "assets.extra"
EXPORT_RECORD = "keras_geo_export.json"
SIGNATURES = ("serving_default", "serve_pixels", "metadata")


def decode_image(image_bytes, *, image_size, max_pixels=None):
    """Decodes one encoded image and resizes it exactly as evaluation does.

    The input is held to the budget of `tfds_geoguessr.geoguessr.limits`
    before decoding: more bytes than `limits.max_file_bytes`, or more pixels
    than `max_pixels` declared in the header (for a GIF: its screen or its
    first frame, whichever is larger), fail with `InvalidArgumentError`
    ("image too large: ...") instead of taking gigabytes of memory. Only the
    first frame of an animated GIF is decoded (`keras_geo.animation`).

    Args:
        image_bytes: scalar `tf.string`, an encoded JPEG, PNG, GIF (first
            frame), BMP or WebP image of any size.
        image_size: side of the square model input, pixels.
        max_pixels: the pixel limit; None: `limits.max_pixels()` (read when
            traced, so an export keeps the limit it was exported with).

    Returns:
        float32 `[image_size, image_size, 3]` RGB pixels in 0-255.
    """
    limit = limits.max_pixels() if max_pixels is None else max_pixels
    max_bytes = limits.max_file_bytes(limit)
    check_bytes = tf.debugging.assert_less_equal(
        tf.cast(tf.strings.length(image_bytes), tf.int64),
        tf.constant(max_bytes, tf.int64),
        message=f"image too large: the file holds more than {max_bytes / 1e6:.1f} MB, the "
        f"limit (4 bytes per pixel of {limits.MAX_PIXELS_ENV})",
    )
    with tf.control_dependencies([check_bytes]):
        image_bytes, frame_pixels = animation.first_gif_frame(image_bytes)
    check_pixels = tf.debugging.assert_less_equal(
        tf.maximum(declared_pixels(image_bytes), frame_pixels),
        tf.constant(limit, tf.int64),
        message=f"image too large: above the limit of {limit / 1e6:.1f} MP "
        f"({limits.MAX_PIXELS_ENV})",
    )
    with tf.control_dependencies([check_pixels]):
        image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
    return _resize(image, image_size)


def declared_pixels(image_bytes):
    """Width x height from an encoded image's header (int64; 0 if unknown).

    Reads the first 30 bytes only: PNG (IHDR), GIF, BMP (Windows headers) and
    WebP (VP8, VP8L, VP8X) headers, and JPEG through
    `tf.image.extract_jpeg_shape`. A header that is not what its signature
    promises gives 0: the decoder then names the file corrupt.
    """
    # Padded: `substr` fails ("pos 12 out of range") past the end of a short input,
    # and no signature below holds a zero byte, so the padding never matches one.
    padded = image_bytes + b"\0" * 30
    head = tf.cast(tf.io.decode_raw(tf.strings.substr(padded, 0, 30), tf.uint8), tf.int64)

    def number(start, length, big_endian=False):
        order = range(length - 1, -1, -1) if big_endian else range(length)
        return sum(head[start + i] * 256**k for k, i in enumerate(order))

    def starts(prefix, at=0):
        return tf.equal(tf.strings.substr(padded, at, len(prefix)), prefix)

    vp8l_bits = number(21, 4)
    sizes = [
        (starts(b"IHDR", 12), number(16, 4, True) * number(20, 4, True)),  # PNG
        (starts(b"GIF8"), number(6, 2) * number(8, 2)),
        (
            starts(b"BM") & tf.reduce_any(tf.equal(number(14, 4), [40, 52, 56, 108, 124])),
            tf.abs(_int32(number(18, 4))) * tf.abs(_int32(number(22, 4))),
        ),
        (starts(b"VP8X", 12), (number(24, 3) + 1) * (number(27, 3) + 1)),
        (starts(b"VP8 ", 12), (number(26, 2) % 16384) * (number(28, 2) % 16384)),
        (
            starts(b"VP8L", 12),
            (vp8l_bits % 16384 + 1) * ((vp8l_bits // 16384) % 16384 + 1),
        ),
    ]
    pixels = tf.cond(
        starts(b"\xff\xd8"),
        lambda: tf.reduce_prod(tf.cast(tf.image.extract_jpeg_shape(image_bytes)[:2], tf.int64)),
        lambda: tf.constant(0, tf.int64),
    )
    for matches, size in sizes:
        pixels = tf.where(matches, size, pixels)
    return pixels


def _int32(value):
    """An unsigned 32-bit header field read as signed (BMP heights may be negative)."""
    return tf.where(value >= 2**31, value - 2**32, value)


def _resize(image, image_size):
    image = pipeline.resize_for_eval(image, image_size=image_size)
    return tf.ensure_shape(tf.cast(image, tf.float32), [image_size, image_size, 3])


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
        resize = lambda image: _resize(image, image_size)  # noqa: E731
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
    try:
        limits.max_pixels()  # Traced into the graph below.
    except ValueError as error:
        raise UserError(str(error)) from None
    model = with_test_time_views(model, tta)
    coordinates = np.asarray(countries.coordinates(class_names), dtype=np.float64)
    k = min(top_k, len(class_names))
    out_dir = pathlib.Path(out_dir)
    check_out_dir(out_dir, overwrite)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(out_dir)
    nbytes = keras_callbacks.weights_nbytes(model)
    paths.check_space(out_dir, nbytes)  # The variables alone; the graph is small.
    tmp_dir = pathlib.Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    _chmod_like_mkdir(tmp_dir)
    try:
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
        _replace_dir(tmp_dir, out_dir)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
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
    """Deletes the temporary folders of killed exports to `out_dir` (`.<name>.XXXXXXXX`)."""
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


def _chmod_like_mkdir(directory):
    """mkdtemp makes 0700 directories; give the usual umask-based mode."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(directory, 0o777 & ~umask)


def _replace_dir(tmp_dir, out_dir):
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp_dir, out_dir)


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
