"""Test-time views: average a model's softmax over N deterministic crops.

`with_test_time_views(model, n)` wraps a trained model (pixels 0-255 ->
probabilities) in a model of the same signature that calls it on the first
`n` of `VIEWS` and averages the probabilities. View 0 is the frame itself, so
`n=1` returns `model` unchanged. The others are shifted and scaled crops of
the frame, resized back to the input size. There is never a horizontal flip:
it would swap the driving side, one of the strongest country cues.

The wrapper shares `model`'s layers and weights; `keras_geo.export` bakes it
into a SavedModel, and `evaluate`/`predict` use it directly.
"""

import keras
from keras import ops

from keras_geo.errors import UserError

# (side as a fraction of the frame, vertical anchor, horizontal anchor):
# the anchors place the crop in the margin it leaves (0: top/left, 1:
# bottom/right). Centre and corner crops as in the ten-crop of AlexNet, less
# the mirrored half.
VIEWS = (
    (1.0, 0.5, 0.5),
    (0.875, 0.5, 0.5),
    (0.875, 0.0, 0.0),
    (0.875, 0.0, 1.0),
    (0.875, 1.0, 0.0),
    (0.875, 1.0, 1.0),
    (0.75, 0.5, 0.5),
    (0.75, 0.5, 0.0),
    (0.75, 0.5, 1.0),
    (0.75, 0.0, 0.5),
    (0.75, 1.0, 0.5),
)


def check_views(views):
    """Raises `UserError` unless `views` is an integer from 1 to `len(VIEWS)`."""
    if isinstance(views, bool) or not isinstance(views, int) or not 1 <= views <= len(VIEWS):
        raise UserError(f"`--tta` must be an integer from 1 to {len(VIEWS)}. Received: {views!r}")


def crop_box(image_size, scale, anchor_y, anchor_x):
    """Returns `(top, left, side)` of a view on a square frame, in pixels.

    Example: `crop_box(64, 0.875, 1.0, 0.0)` is `(8, 0, 56)`, the bottom-left
    56 px square.
    """
    side = max(1, round(image_size * scale))
    margin = image_size - side
    return round(margin * anchor_y), round(margin * anchor_x), side


@keras.saving.register_keras_serializable(package="keras_geo")
class ViewCrop(keras.layers.Layer):
    """Crops a square view of a square frame and resizes it back (bilinear).

    Args:
        scale: Side of the view as a fraction of the frame's, in (0, 1].
        anchor_y: Vertical place of the view in the margin, 0 (top) to 1.
        anchor_x: Horizontal place, 0 (left) to 1.
    """

    def __init__(self, scale, anchor_y=0.5, anchor_x=0.5, **kwargs):
        super().__init__(**kwargs)
        if not 0 < scale <= 1:
            raise ValueError(f"`scale` must be in (0, 1]. Received: scale={scale}")
        self.scale = scale
        self.anchor_y = anchor_y
        self.anchor_x = anchor_x

    def call(self, images):
        size = images.shape[1]
        top, left, side = crop_box(size, self.scale, self.anchor_y, self.anchor_x)
        if side == size:
            return images
        crop = images[:, top : top + side, left : left + side, :]
        return ops.image.resize(crop, (size, size), interpolation="bilinear")

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(scale=self.scale, anchor_y=self.anchor_y, anchor_x=self.anchor_x)
        return config


def with_test_time_views(model, views):
    """Returns a model that averages `model`'s probabilities over `views` views.

    Args:
        model: Pixels 0-255 `[N, S, S, 3]` -> probabilities `[N, C]`.
        views: 1 to `len(VIEWS)`; 1 returns `model` itself.

    Returns:
        A `keras.Model` with `model`'s input and output shapes.
    """
    check_views(views)
    if views == 1:
        return model
    inputs = keras.Input(shape=model.input_shape[1:], name="image", dtype="float32")
    outputs = [
        model(ViewCrop(scale, anchor_y, anchor_x, name=f"view_{index}")(inputs))
        for index, (scale, anchor_y, anchor_x) in enumerate(VIEWS[:views])
    ]
    mean = keras.layers.Average(name="tta_mean", dtype="float32")(outputs)
    return keras.Model(inputs, mean, name=f"{model.name}_tta{views}")
