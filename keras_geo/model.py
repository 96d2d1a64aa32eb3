"""Transfer-learning model: build any backbone, freeze/unfreeze by phase, compile.

The model takes raw RGB pixels in 0-255 (`[N, S, S, 3]`, float32 or uint8)
and applies, inside itself, the preprocessing its backbone's ImageNet weights
expect (`keras_geo.backbones`: caffe style for ResNet and VGG, the
application's own layers for EfficientNetV2 and ConvNeXt), so exported models
and `predict` need no separate preprocessing step.

Layout (layer names are part of the interface):

    image -> [preprocess (`caffe_preprocessing`)] -> backbone (keras.applications,
    no top, global average pooling) -> [head_dropout]
    -> head (Dense, softmax, float32)

Every layer is a stock Keras layer, so a saved `model.keras` loads with
Keras alone (`keras.saving.load_model(path, compile=False)`; compiling needs
keras-geo's optimizer, loss and metrics).

The model's name is `geo_<backbone>` (e.g. `geo_resnet50`): it records which
`keras_geo.backbones` spec built it.

Phases (`set_phase`):
- "frozen": the whole backbone frozen, only the `head*` layers train
  (the paper's feature extraction).
- "finetune": the backbone's last `stages` stages train (1, the default: the
  paper's last stage, ResNet `conv5_*`); their BatchNormalization layers stay
  frozen and in inference mode unless `train_batchnorm` (for random initial
  weights, whose statistics are not worth keeping).
Recompile (`compile_model`) after every `set_phase`.
"""

import os
import warnings

import keras
import numpy as np
from keras import ops

from keras_geo import backbones
from keras_geo.compat import keras_slots
from keras_geo.compat.keras_adamw import AdamW
from keras_geo.config import MIN_IMAGE_SIZE, PHASES
from keras_geo.errors import UserError, one_line
from keras_geo.metrics import BalancedAccuracy, MeanGreatCircleError

# Caffe-style ImageNet channel means, BGR order (keras.applications.resnet50).
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
FEATURE_DIM = 2048  # ResNet50's pooled output.


def caffe_preprocessing(name="preprocess"):
    """Caffe-style preprocessing as a stock Keras layer: RGB 0-255 -> BGR minus the means.

    A frozen float32 `Dense(3)` whose kernel swaps the R and B channels and
    whose bias is minus `CAFFE_MEAN_BGR`: exactly
    `keras.applications.resnet50.preprocess_input` (products by 1 and sums
    with 0 are exact), and a saved model built with it needs nothing from
    keras-geo to load.

    Example: the RGB pixel (255, 0, 0) becomes (-103.939, -116.779, 131.32).
    """
    layer = keras.layers.Dense(3, name=name, dtype="float32", trainable=False)
    layer.build((None, 3))
    swap_red_blue = np.eye(3, dtype="float32")[::-1]
    layer.set_weights([swap_red_blue, -np.asarray(CAFFE_MEAN_BGR, dtype="float32")])
    return layer


@keras.saving.register_keras_serializable(package="keras_geo")
class CaffePreprocessing(keras.layers.Layer):
    """RGB pixels in 0-255 -> caffe-style input (BGR, ImageNet mean removed).

    Equals `keras.applications.resnet50.preprocess_input` (no scaling). Models
    saved before `caffe_preprocessing` replaced it still hold this layer (and
    need keras-geo imported to load); new models do not.

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
    backbone="resnet50",
    image_size=224,
    weights="imagenet",
    dropout=0.0,
    mixed_precision=None,
):
    """Builds the classifier on `backbone` (phase "frozen" already applied).

    Args:
        num_classes: Number of countries (>= 2).
        backbone: A `keras_geo.backbones.NAMES` entry; "resnet50" (the paper).
        image_size: Square input size in pixels (>= 32).
        weights: "imagenet" (downloaded once, cached in `~/.keras/models`),
            "none"/None (random init), or the path of a local `.h5` file
            holding the backbone's no-top weights.
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
    spec = backbones.get(backbone)
    _check_args(num_classes, image_size, dropout)
    weights = resolve_weights(weights, spec)
    previous = keras.config.dtype_policy()
    if mixed_precision is not None:
        keras.config.set_dtype_policy("mixed_float16" if mixed_precision else "float32")
    try:
        model = _assemble(spec, num_classes, image_size, weights, dropout)
    finally:
        keras.config.set_dtype_policy(previous)
    set_phase(model, "frozen")
    return model


def _check_args(num_classes, image_size, dropout):
    if not isinstance(image_size, int) or image_size < MIN_IMAGE_SIZE:
        raise UserError(
            f"`image_size` must be an integer >= {MIN_IMAGE_SIZE} (the backbones' "
            f"minimum). Received: image_size={image_size}"
        )
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"`num_classes` must be >= 2. Received: num_classes={num_classes}")
    if not 0 <= dropout < 1:
        raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")


def resolve_weights(weights, spec=None):
    """Returns None or a local .h5 path; downloads the ImageNet weights.

    Args:
        weights: "imagenet", "none"/None, or a local file path.
        spec: The `keras_geo.backbones.BackboneSpec`; default ResNet50's.

    Raises:
        UserError: the download failed (offline: the message names the
            exact file to download and pass as `--weights PATH`), or the
            local file does not exist.
    """
    spec = spec or backbones.get("resnet50")
    if weights is None or str(weights).lower() == "none":
        return None
    if weights == "imagenet":
        return _download_weights(spec)
    return check_weights(weights, spec.name)


def check_weights(weights, backbone="resnet50"):
    """Returns `weights` unless it names a local file that does not exist.

    Args:
        weights: "imagenet", "none"/None, or a local file path.
        backbone: The name of the backbone it is for (`keras_geo.backbones`).

    Raises:
        UserError: `weights` is a path, and no file is there.
    """
    if weights is None or weights == "imagenet" or str(weights).lower() == "none":
        return weights
    path = os.fspath(weights)
    if not os.path.isfile(path):
        spec = backbones.get(backbone)
        raise UserError(
            f"weights file not found: {path}; pass an existing {spec.weights_file} "
            f"({spec.name} no-top), --weights imagenet or --weights none"
        )
    return path


def _download_weights(spec):
    """Downloads (or finds in `~/.keras/models`) the ImageNet weights, hash-checked.

    `get_file` checks the file against the hash `keras.applications` uses; a
    cached copy that does not match is downloaded again, and a download that
    does not match raises (Keras then downloads it again on the next call).
    """
    try:
        return keras.utils.get_file(
            spec.weights_file,
            spec.weights_url,
            cache_subdir="models",
            file_hash=spec.weights_hash,
        )
    except Exception as e:  # get_file raises bare Exception on URL errors.
        reason = one_line(e)
        if isinstance(e, ValueError) and "hash does not match" in reason:
            raise UserError(
                f"the downloaded ImageNet weights of {spec.name} ({spec.weights_file}) do "
                f"not match keras.applications' hash {spec.weights_hash}: a corrupt or "
                "tampered download, not used; run the command again to download it again, "
                "or pass a checked file as --weights PATH"
            ) from None
        raise UserError(
            f"could not download ImageNet weights of {spec.name} ({reason}); download "
            f"{spec.weights_url} elsewhere and pass --weights PATH/{spec.weights_file}, "
            "or use --weights none"
        ) from None


def _assemble(spec, num_classes, image_size, weights_path, dropout):
    shape = (image_size, image_size, 3)
    base = spec.build(image_size)
    if weights_path is not None:
        _load_backbone_weights(base, spec, weights_path)
    inputs = keras.Input(shape=shape, name="image", dtype="float32")
    x = inputs
    if spec.preprocessing == "caffe":
        x = caffe_preprocessing()(x)
    # No `training=False`: a frozen BatchNormalization layer (trainable=False)
    # runs in inference mode anyway (Keras 3), and `set_phase` decides which are.
    x = base(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="head")(x)
    return keras.Model(inputs, outputs, name=f"geo_{spec.name}")


def _load_backbone_weights(base, spec, path):
    try:
        # Keras loads a `.weights.h5` file of another architecture leniently,
        # warning that it skipped layers: that is a wrong file here.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            base.load_weights(path)
        skipped = [w for w in caught if "Skipping" in str(w.message)]
        if skipped:
            raise ValueError(str(skipped[0].message))
    except Exception as e:
        raise UserError(
            f"weights file {path} does not fit {spec.constructor} (include_top=False): "
            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}; pass "
            f"the no-top ImageNet .h5 of {spec.name} ({spec.weights_file}), "
            "another --backbone, or --weights none"
        ) from e


def backbone(model):
    """Returns the backbone layer (the nested `keras.Model`)."""
    return next(layer for layer in model.layers if isinstance(layer, keras.Model))


def backbone_spec(model):
    """Returns the `keras_geo.backbones.BackboneSpec` that built `model`."""
    return backbones.get(model.name.removeprefix("geo_"))


def head_layers(model):
    """Returns the head layers (`head_*` ..., `head`) in call order."""
    return [layer for layer in model.layers if layer.name.startswith("head")]


def feature_extractor(model):
    """Returns a model sharing `model`'s layers: image -> pooled features [N, D]."""
    features = head_layers(model)[0].input
    return keras.Model(model.inputs, features, name="geo_features")


def head(model):
    """Returns a model sharing `model`'s head layers: features [N, D] -> probs.

    Training it trains the head of `model` (the layers and weights are shared).
    """
    inputs = keras.Input(shape=(backbone(model).output.shape[-1],), name="features")
    x = inputs
    for layer in head_layers(model):
        x = layer(x)
    return keras.Model(inputs, x, name="geo_head")


def set_phase(model, phase, *, stages="1", train_batchnorm=False):
    """Sets which layers train: "frozen" (head only) or "finetune".

    Args:
        model: From `build_model`.
        phase: "frozen" or "finetune".
        stages: In "finetune", how many of the backbone's last stages train:
            "1" (the paper: ResNet `conv5_*`), "N", or "all".
        train_batchnorm: In "finetune", whether the BatchNormalization layers
            of those stages train (batch statistics, updated moving means). Off
            (the paper, pretrained weights): they stay frozen, in inference
            mode. On for random initial weights: frozen random statistics make
            fine-tuning diverge.

    Recompile the model afterwards.
    """
    if phase not in PHASES:
        raise UserError(f"unknown phase {phase!r}; use one of {', '.join(PHASES)}")
    base = backbone(model)
    base.trainable = phase == "finetune"
    if phase == "finetune":
        spec = backbone_spec(model)
        count = backbones.stage_count(str(stages), spec)
        if not 1 <= count <= spec.num_stages:
            raise UserError(
                f"`finetune_stages` must be 1-{spec.num_stages} or 'all' for {spec.name}. "
                f"Received: finetune_stages={stages!r}"
            )
        unfrozen = {id(layer) for layer in backbones.layers_of_last_stages(base, spec, count)}
        for layer in base.layers:
            is_batchnorm = isinstance(layer, keras.layers.BatchNormalization)
            layer.trainable = id(layer) in unfrozen and (train_batchnorm or not is_batchnorm)
    for layer in head_layers(model):
        layer.trainable = True


def training_metrics(num_classes, class_names=None):
    """The metrics `compile_model` gives a model of `num_classes` (see there)."""
    metrics = [
        keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
        BalancedAccuracy(num_classes),
        keras.metrics.SparseTopKCategoricalAccuracy(k=min(5, num_classes), name="top5_accuracy"),
    ]
    if class_names is not None:
        metrics.append(MeanGreatCircleError(list(class_names)))
    return metrics


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
    """Compiles with AdamW (`keras_geo.compat.keras_adamw`) and the project's metrics.

    Metrics: `accuracy`, `balanced_accuracy` (mean per-country recall),
    `top5_accuracy` (top min(5, C)), and `mean_km`
    (`keras_geo.metrics.MeanGreatCircleError`; skipped when `class_names`
    is None). A mixed_float16 model gets loss scaling automatically.

    Args:
        model: From `build_model`, after `set_phase`.
        loss: A Keras loss (e.g. `keras_geo.losses.HaversineCrossEntropy`).
        learning_rate: AdamW learning rate: a float or a
            `keras.optimizers.schedules.LearningRateSchedule`.
        weight_decay: AdamW decoupled weight decay.
        class_names: Country names in label order, or None.
        jit_compile: "auto" uses XLA on GPU only.
        **compile_kwargs: Passed on to `model.compile`.
    """
    model.compile(
        optimizer=AdamW(learning_rate=learning_rate, weight_decay=weight_decay),
        loss=loss,
        metrics=training_metrics(model.output_shape[-1], class_names),
        jit_compile=jit_compile,
        **compile_kwargs,
    )
    keras_slots.build_optimizer_slots(model)  # Not in the first traced step: one trace.
    return model
