"""Grad-CAM: where in the screenshot the evidence for a country lies.

Selvaraju et al., "Grad-CAM" (ICCV 2017): weight each channel of the last
convolutional feature map by the mean gradient of the class score over it, sum,
keep the positive part. The score here is the class's log-probability (our
models end in a softmax), whose gradient does not vanish when the softmax
saturates. The feature map is the last 4-D output of the model at least
`MIN_CELLS` wide, looked up inside a nested backbone too (our ResNet50 keeps
`conv5_block3_out` inside the `backbone` model, pooling included; at 224 px it
is 7x7; at 32 px it is 1x1 and conv4 2x2, so `conv2_block3_out`, 8x8, is
used; the demo's EfficientNetV2B0 at 64 px gives its 8x8 `block3` map). Needs
a Keras model: a SavedModel keeps no layer structure to tap.
"""

import keras
import numpy as np
import tensorflow as tf

# Feature maps smaller than this say little about where (a 4x4 map, upsampled,
# is one blob over the whole screenshot): the last map at least this many
# cells wide is used instead. 7: ResNet50's conv5 at its 224 px.
MIN_CELLS = 7


def _last_feature_map(layers):
    """The last layer of `layers` with a 4-D output at least `MIN_CELLS` wide, or None."""
    maps = [layer for layer in layers if len(layer.output.shape) == 4]
    wide = [layer for layer in maps if (layer.output.shape[1] or 0) >= MIN_CELLS]
    return (wide or maps or [None])[-1]


def feature_map_model(model):
    """Returns a model mapping `model`'s input to `[feature_map, probabilities]`.

    Handles a functional model whose last feature map is a top-level layer, or
    lies inside a nested functional model of a chain of top-level layers (as in
    `keras_geo.model.build_model`).

    Raises:
        ValueError: the model has no 4-D layer output to explain.
    """
    for layer in reversed(model.layers[1:]):
        if isinstance(layer, keras.Model):
            inner = _last_feature_map(layer.layers[1:])
            if inner is not None:
                return _tap_nested(model, layer, inner)
        elif len(layer.output.shape) == 4:
            return keras.Model(model.inputs, [layer.output, model.output])
    raise ValueError(f"{model.name} has no convolutional feature map for Grad-CAM")


def _tap_nested(model, backbone, inner):
    """Re-runs `model`'s chain of top-level layers, taking `inner`'s output from `backbone`."""
    tapped = keras.Model(backbone.inputs, [inner.output, backbone.output])
    inputs = keras.Input(model.input_shape[1:])
    x, feature_map = inputs, None
    for layer in model.layers[1:]:
        if layer is backbone:
            feature_map, x = tapped(x, training=False)
        else:
            x = layer(x, training=False)
    return keras.Model(inputs, [feature_map, x])


def gradcam(cam_model, pixels, class_index):
    """Computes the Grad-CAM heatmap of one image for one class.

    Args:
        cam_model: from `feature_map_model`.
        pixels: `[S, S, 3]` float32 model input (as `KerasPredictor.pixels` gives).
        class_index: the class to explain.

    Returns:
        float32 `[h, w]` heatmap of the feature map's size, in [0, 1] (all
        zeros when no region speaks for the class).
    """
    batch = tf.convert_to_tensor(pixels, tf.float32)[tf.newaxis]
    with tf.GradientTape() as tape:
        feature_map, probabilities = cam_model(batch, training=False)
        score = tf.math.log(probabilities[:, class_index] + 1e-12)
    gradients = tape.gradient(score, feature_map)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * feature_map, axis=-1))[0].numpy()
    peak = cam.max()
    return (cam / peak if peak > 0 else cam).astype(np.float32)


def overlay(image, heatmap, *, opacity=0.45):
    """Blends a `[h, w]` heatmap (jet colours) over an RGB uint8 image of any size.

    Returns:
        uint8 `[H, W, 3]`, the size of `image`.
    """
    from matplotlib import colormaps

    height, width = image.shape[:2]
    resized = tf.image.resize(heatmap[..., None], (height, width), method="bilinear")
    colours = colormaps["jet"](np.clip(resized.numpy()[..., 0], 0, 1))[..., :3] * 255
    blended = (1 - opacity) * image.astype(np.float32) + opacity * colours
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)
