"""Export a trained model as a LiteRT (TFLite) file: the model on a phone or in a browser.

The file takes pixels, not encoded bytes: LiteRT has no image decoder, and
its resize ops do not antialias, which a 1536x662 screenshot squashed to 224
px needs. So the caller decodes the screenshot and squashes the whole frame
(GeoGuessr's UI included) to the fixed input size S x S with an antialiased
resize, as `keras_geo.images.decode_image` does for the SavedModel and for
`keras-geo predict --model X.tflite`. The caffe or built-in preprocessing is
inside the model, as in every export.

Signature `serving_default`:

- input `images`: float32 `[N, S, S, 3]`, RGB 0-255 (`N` may change between
  calls).
- outputs `probabilities` `[N, C]` float32 (class order), `top_k_countries`
  `[N, k]` string and `top_k_probabilities` `[N, k]` float32 (best first,
  `k = min(top_k, C)`), and `class_names` `[C]` string, a constant: the
  class order, so the file needs no side file.

Weights (`quantize`): "none" float32; "float16" stored as float16 (half the
size; LiteRT's CPU kernels compute in float32); "dynamic" int8 weights with
dynamic-range quantized activations (a quarter of the size). Only LiteRT's
built-in ops are allowed, so the file runs on the plain LiteRT runtime (no
Flex delegate); a model needing more fails to export, naming the op.
"""

import pathlib
import tempfile

import keras
import tensorflow as tf

from keras_geo import paths
from keras_geo.errors import UserError, one_line
from keras_geo.export import check_model

QUANTIZATIONS = ("none", "float16", "dynamic")
SUFFIX = ".tflite"
SIGNATURE = "serving_default"


def export_litert(
    model, class_names, out_path, *, image_size, top_k=5, quantize="none", overwrite=False
):
    """Writes `model` as a LiteRT file that maps S x S pixels to countries.

    Args:
        model: the Keras model (pixels 0-255 `[N, S, S, 3]` -> probabilities,
            as `keras_geo.model.build_model` builds it).
        class_names: the `C` class names, in output order.
        out_path: the `.tflite` file to write (atomically: a failed export
            leaves nothing behind).
        image_size: S, the model's input side.
        top_k: countries in the `top_k_*` outputs; `k = min(top_k, C)`.
        quantize: one of `QUANTIZATIONS`.
        overwrite: replace an existing file at `out_path`.

    Returns:
        `out_path` as a `pathlib.Path`.

    Raises:
        UserError: bad arguments, an existing `out_path`, or a model LiteRT
            cannot run with its built-in ops.
    """
    class_names = [str(name) for name in class_names]
    check_model(model, class_names, image_size, top_k)
    if quantize not in QUANTIZATIONS:
        raise UserError(
            f"`quantize` must be one of {', '.join(QUANTIZATIONS)}. Received: quantize={quantize!r}"
        )
    out_path = pathlib.Path(out_path)
    check_out_file(out_path, overwrite)
    k = min(top_k, len(class_names))
    serve = _serving_function(model, class_names, image_size, k)
    flatbuffer = _convert(model, serve, quantize)
    with paths.atomic_write(out_path) as tmp:
        tmp.write_bytes(flatbuffer)
    return out_path


def check_out_file(out_path, overwrite):
    """Raises `UserError` unless `out_path` may receive a LiteRT export."""
    out_path = pathlib.Path(out_path)
    if out_path.suffix != SUFFIX:
        raise UserError(f"--out {out_path} must end with {SUFFIX} for --format tflite.")
    if out_path.is_dir():
        raise UserError(f"--out {out_path} is a directory: pass a .tflite file name.")
    if out_path.exists() and not overwrite:
        raise UserError(f"{out_path} exists: pass --overwrite or choose another --out.")


def _serving_function(model, class_names, image_size, k):
    names = tf.constant(class_names, dtype=tf.string)

    @tf.function(
        input_signature=[tf.TensorSpec([None, image_size, image_size, 3], tf.float32, "images")],
        autograph=False,
    )
    def serve(images):
        probabilities = tf.cast(model(images, training=False), tf.float32)
        top_probabilities, top_indices = tf.math.top_k(probabilities, k=k)
        return {
            "probabilities": probabilities,
            "top_k_countries": tf.gather(names, top_indices),
            "top_k_probabilities": top_probabilities,
            "class_names": tf.identity(names),
        }

    return serve


def _convert(model, serve, quantize):
    """Converts through a SavedModel written by `keras.export.ExportArchive` (Keras's own path)."""
    with tempfile.TemporaryDirectory(prefix="keras-geo-litert-") as saved_model:
        archive = keras.export.ExportArchive()
        archive.track(model)  # The converter then freezes the weights into the file.
        archive.add_endpoint(SIGNATURE, serve)
        archive.write_out(saved_model, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize != "none":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        try:
            return converter.convert()
        except Exception as error:  # noqa: BLE001 (the converter raises several types)
            raise UserError(
                f"LiteRT cannot run this model with its built-in ops: {one_line(error)}"
            ) from None
