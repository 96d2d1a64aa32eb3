"""ResNet50 transfer-learning model: build, freeze/unfreeze by phase, compile.

The model takes raw RGB pixels in 0-255 (`[N, S, S, 3]`, float32 or uint8)
and applies, inside itself, the preprocessing Keras' ImageNet weights expect
(caffe style: RGB->BGR, subtract the ImageNet channel means, no scaling), so
exported models and `predict` need no separate preprocessing step.

Layout (layer names are part of the interface):

    image -> preprocess (CaffePreprocessing) -> backbone (ResNet50, no top,
    global average pooling, called with training=False) -> [head_dropout]
    -> head (Dense, softmax, float32)

Phases (`set_phase`):
- "frozen": the whole backbone frozen, only the `head*` layers train
  (the paper's feature extraction).
- "finetune": every `conv5_*` layer of the backbone trains except its
  BatchNormalization layers, which stay frozen and in inference mode
  (the paper's fine-tuning of torchvision's `layer4`).
Recompile (`compile_model`) after every `set_phase`.
"""

import os

import keras
from keras import ops

from keras_geo.config import MIN_IMAGE_SIZE, PHASES
from keras_geo.errors import UserError

# Caffe-style ImageNet channel means, BGR order (keras.applications.resnet50).
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
FEATURE_DIM = 2048  # ResNet50's pooled output.

_WEIGHTS_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
_WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/resnet/" + _WEIGHTS_FILE
)
_WEIGHTS_HASH = "4d473c1dd8becc155b73f8504c6f6626"


@keras.saving.register_keras_serializable(package="keras_geo")
class CaffePreprocessing(keras.layers.Layer):
    """RGB pixels in 0-255 -> caffe-style input (BGR, ImageNet mean removed).

    Equals `keras.applications.resnet50.preprocess_input` (no scaling).

    Example: the RGB pixel (255, 0, 0) becomes (-103.939, -116.779, 131.32).
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        x = ops.flip(x, axis=-1)  # RGB -> BGR
        return x - ops.convert_to_tensor(CAFFE_MEAN_BGR, dtype=self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


def build_model(
    num_classes,
    *,
    image_size=224,
    weights="imagenet",
    dropout=0.0,
    mixed_precision=None,
):
    """Builds the ResNet50 classifier (phase "frozen" already applied).

    Args:
        num_classes: Number of countries (>= 2).
        image_size: Square input size in pixels (>= 32).
        weights: "imagenet" (downloaded once, cached in `~/.keras/models`),
            "none"/None (random init), or the path of a local `.h5` file
            holding ResNet50 no-top weights.
        dropout: Rate of a `head_dropout` layer before the classifier; 0 (the
            paper) adds no layer.
        mixed_precision: True builds with the "mixed_float16" policy, False
            with "float32", None with the current global policy. The `head`
            layer always computes in float32.

    Returns:
        A functional `keras.Model`: `image` [N, S, S, 3] pixels 0-255 ->
        probabilities [N, num_classes] float32.

    Example:
        >>> model = build_model(20, image_size=32, weights=None)
        >>> model.output_shape
        (None, 20)
    """
    _check_args(num_classes, image_size, dropout)
    weights = _resolve_weights(weights)
    previous = keras.config.dtype_policy()
    if mixed_precision is not None:
        keras.config.set_dtype_policy("mixed_float16" if mixed_precision else "float32")
    try:
        model = _assemble(num_classes, image_size, weights, dropout)
    finally:
        keras.config.set_dtype_policy(previous)
    set_phase(model, "frozen")
    return model


def _check_args(num_classes, image_size, dropout):
    if not isinstance(image_size, int) or image_size < MIN_IMAGE_SIZE:
        raise UserError(
            f"`image_size` must be an integer >= {MIN_IMAGE_SIZE} (ResNet50's "
            f"minimum). Received: image_size={image_size}"
        )
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"`num_classes` must be >= 2. Received: num_classes={num_classes}")
    if not 0 <= dropout < 1:
        raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")


def _resolve_weights(weights):
    """Returns None or a local .h5 path; downloads the ImageNet weights."""
    if weights is None or str(weights).lower() == "none":
        return None
    if weights == "imagenet":
        try:
            return keras.utils.get_file(
                _WEIGHTS_FILE, _WEIGHTS_URL, cache_subdir="models", file_hash=_WEIGHTS_HASH
            )
        except Exception as e:  # get_file raises bare Exception on URL errors.
            raise UserError(
                f"could not download ImageNet weights ({_WEIGHTS_URL}: {e}); pass a "
                "local .h5 with --weights PATH or use --weights none"
            ) from e
    path = os.fspath(weights)
    if not os.path.isfile(path):
        raise UserError(
            f"weights file not found: {path}; pass an existing ResNet50 no-top .h5, "
            "--weights imagenet or --weights none"
        )
    return path


def _assemble(num_classes, image_size, weights_path, dropout):
    shape = (image_size, image_size, 3)
    base = keras.applications.ResNet50(
        include_top=False, weights=None, input_shape=shape, pooling="avg", name="backbone"
    )
    if weights_path is not None:
        _load_backbone_weights(base, weights_path)
    inputs = keras.Input(shape=shape, name="image", dtype="float32")
    x = CaffePreprocessing(name="preprocess")(inputs)
    x = base(x, training=False)  # BatchNorm in inference mode in every phase.
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="head")(x)
    return keras.Model(inputs, outputs, name="geo_resnet50")


def _load_backbone_weights(base, path):
    try:
        base.load_weights(path)
    except Exception as e:
        raise UserError(
            f"weights file {path} does not fit ResNet50 (include_top=False): "
            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}; pass "
            "the no-top ImageNet .h5 (resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5) "
            "or --weights none"
        ) from e


def backbone(model):
    """Returns the ResNet50 backbone layer (a nested `keras.Model`)."""
    return model.get_layer("backbone")


def head_layers(model):
    """Returns the head layers (`head_*` ..., `head`) in call order."""
    return [layer for layer in model.layers if layer.name.startswith("head")]


def feature_extractor(model):
    """Returns a model sharing `model`'s layers: image -> pooled features [N, 2048]."""
    features = head_layers(model)[0].input
    return keras.Model(model.inputs, features, name="geo_features")


def head(model):
    """Returns a model sharing `model`'s head layers: features [N, 2048] -> probs.

    Training it trains the head of `model` (the layers and weights are shared).
    """
    inputs = keras.Input(shape=(backbone(model).output.shape[-1],), name="features")
    x = inputs
    for layer in head_layers(model):
        x = layer(x)
    return keras.Model(inputs, x, name="geo_head")


def set_phase(model, phase):
    """Sets which layers train: "frozen" (head only) or "finetune" (+ conv5).

    In "finetune", `conv5_*` layers train except BatchNormalization, which
    stays frozen (moving statistics untouched, inference mode). Recompile
    the model afterwards.
    """
    if phase not in PHASES:
        raise UserError(f"unknown phase {phase!r}; use one of {', '.join(PHASES)}")
    base = backbone(model)
    base.trainable = phase == "finetune"
    if phase == "finetune":
        for layer in base.layers:
            layer.trainable = layer.name.startswith("conv5_") and not isinstance(
                layer, keras.layers.BatchNormalization
            )
    for layer in head_layers(model):
        layer.trainable = True


def compile_model(
    model,
    *,
    loss,
    learning_rate,
    weight_decay,
    class_names,
    jit_compile="auto",
    **compile_kwargs,
):
    """Compiles with AdamW (decoupled weight decay) and the project's metrics.

    Metrics: `accuracy`, `top5_accuracy` (top min(5, C)), and `mean_km`
    (`keras_geo.metrics.MeanGreatCircleError`; skipped when `class_names`
    is None). A mixed_float16 model gets loss scaling automatically.

    Args:
        model: From `build_model`, after `set_phase`.
        loss: A Keras loss (e.g. `keras_geo.losses.HaversineCrossEntropy`).
        learning_rate: AdamW learning rate.
        weight_decay: AdamW decoupled weight decay.
        class_names: Country names in label order, or None.
        jit_compile: "auto" uses XLA on GPU only.
        **compile_kwargs: Passed on to `model.compile`.
    """
    num_classes = model.output_shape[-1]
    metrics = [
        keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
        keras.metrics.SparseTopKCategoricalAccuracy(k=min(5, num_classes), name="top5_accuracy"),
    ]
    if class_names is not None:
        from keras_geo.metrics import MeanGreatCircleError

        metrics.append(MeanGreatCircleError(list(class_names)))
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay),
        loss=loss,
        metrics=metrics,
        jit_compile=jit_compile,
        **compile_kwargs,
    )
    return model
