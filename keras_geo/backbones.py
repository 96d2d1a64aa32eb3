"""The backbones a run may use: one frozen spec per `keras.applications` model.

A spec says how to build the backbone (no top, global average pooling), what
preprocessing its ImageNet weights expect, where each of its stages starts
(for `TrainConfig.finetune_stages`) and which file holds its ImageNet weights,
with the hash `keras.applications` checks it against (a download that does
not match is refused). This module holds data only
and imports Keras lazily, so `keras_geo.config` can validate a config with it.

Stages are listed first to last by the name prefix of their first layer; a
stage runs up to the next stage's first layer, and the last stage up to the
backbone's output (EfficientNetV2's `top_*` layers and ConvNeXt's final
LayerNormalization belong to their last stage).
"""

import dataclasses

from keras_geo.errors import UserError

WEIGHTS_ROOT = "https://storage.googleapis.com/tensorflow/keras-applications/"


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """How to build, preprocess for, unfreeze and find weights of one backbone.

    Attributes:
        name: The `TrainConfig.backbone` value, e.g. "resnet50".
        constructor: The `keras.applications` function, e.g. "ResNet50".
        preprocessing: "caffe" (`keras_geo.model.CaffePreprocessing` before
            the backbone) or "builtin" (the application's own preprocessing
            layers, `include_preprocessing=True`); both take RGB 0-255.
        stage_starts: Name prefix of the first layer of each stage, first to
            last; `stage_starts[-1]` is the "last stage" of the paper's recipe.
        stage_names: Readable names of the stages (README, errors).
        weights_file: Name of the no-top ImageNet `.h5` file.
        weights_dir: URL folder of `weights_file`.
        weights_hash: The hash `keras.applications` checks `weights_file`
            against (md5, or sha256 for ConvNeXt), copied from its
            `WEIGHTS_HASHES` (`tests/test_backbones.py` compares them).
        default_image_size: The input size the ImageNet weights were trained at.
        model_name: The backbone's model name; None keeps the application's
            own (its layer names depend on it).
    """

    name: str
    constructor: str
    preprocessing: str
    stage_starts: tuple
    stage_names: tuple
    weights_file: str
    weights_dir: str
    weights_hash: str
    default_image_size: int = 224
    model_name: str | None = None

    @property
    def num_stages(self):
        return len(self.stage_starts)

    @property
    def weights_url(self):
        return WEIGHTS_ROOT + self.weights_dir + self.weights_file

    def build(self, image_size):
        """Returns the backbone with random weights: image -> pooled features."""
        import keras  # Lazy: the CLI imports this module at start-up; keeps it free of Keras.

        kwargs = dict(include_top=False, weights=None, input_shape=(image_size, image_size, 3))
        if self.preprocessing == "builtin":
            kwargs["include_preprocessing"] = True
        if self.model_name is not None:
            kwargs["name"] = self.model_name
        return getattr(keras.applications, self.constructor)(pooling="avg", **kwargs)


def _resnet(depth, weights_hash):
    return BackboneSpec(
        name=f"resnet{depth}",
        constructor=f"ResNet{depth}",
        preprocessing="caffe",
        stage_starts=("conv1_", "conv2_", "conv3_", "conv4_", "conv5_"),
        stage_names=("conv1", "conv2_*", "conv3_*", "conv4_*", "conv5_*"),
        weights_file=f"resnet{depth}_weights_tf_dim_ordering_tf_kernels_notop.h5",
        weights_dir="resnet/",
        weights_hash=weights_hash,
        model_name="backbone",
    )


def _efficientnetv2(variant, size, weights_hash):
    return BackboneSpec(
        name=f"efficientnetv2{variant}",
        constructor=f"EfficientNetV2{variant.upper()}",
        preprocessing="builtin",
        stage_starts=("stem_", *(f"block{i}a_" for i in range(1, 7))),
        stage_names=("stem", *(f"block{i}*" for i in range(1, 6)), "block6* + top_*"),
        weights_file=f"efficientnetv2-{variant}_notop.h5",
        weights_dir="efficientnet_v2/",
        weights_hash=weights_hash,
        default_image_size=size,
    )


BACKBONES = {
    spec.name: spec
    for spec in (
        _resnet(50, "4d473c1dd8becc155b73f8504c6f6626"),
        _resnet(101, "88cf7a10940856eca736dc7b7e228a21"),
        BackboneSpec(
            name="vgg16",
            constructor="VGG16",
            preprocessing="caffe",
            stage_starts=tuple(f"block{i}_" for i in range(1, 6)),
            stage_names=tuple(f"block{i}_*" for i in range(1, 6)),
            weights_file="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
            weights_dir="vgg16/",
            weights_hash="6d6bbae143d832006294945121d1f1fc",
            model_name="backbone",
        ),
        _efficientnetv2("b0", 224, "893217f2bb855e2983157299931e43ff"),
        _efficientnetv2("s", 384, "af0682fb74e8c54910f2d4393339c070"),
        BackboneSpec(
            name="convnext_tiny",
            constructor="ConvNeXtTiny",
            preprocessing="builtin",
            stage_starts=(
                "convnext_tiny_stem",
                *(f"convnext_tiny_downsampling_block_{i}" for i in range(3)),
            ),
            stage_names=tuple(f"stage_{i}" for i in range(4)),
            weights_file="convnext_tiny_notop.h5",
            weights_dir="convnext/",
            weights_hash="d547c096cabd03329d7be5562c5e14798aa39ed24b474157cef5e85ab9e49ef1",
        ),
    )
}
NAMES = tuple(BACKBONES)


def get(name):
    """Returns the `BackboneSpec` called `name`.

    Raises:
        UserError: `name` is not one of `NAMES`.
    """
    if name not in BACKBONES:
        raise UserError(f"unknown backbone {name!r}; use one of {', '.join(NAMES)}")
    return BACKBONES[name]


def stage_count(finetune_stages, spec):
    """Returns how many stages `finetune_stages` ("all" or "N") unfreezes."""
    return spec.num_stages if finetune_stages == "all" else int(finetune_stages)


def layers_of_last_stages(base, spec, count):
    """Returns the backbone's layers in its last `count` stages (all: every layer).

    Args:
        base: The backbone built by `spec.build`.
        spec: Its `BackboneSpec`.
        count: 1 to `spec.num_stages`.
    """
    if count >= spec.num_stages:
        return list(base.layers)
    prefix = spec.stage_starts[spec.num_stages - count]
    for index, layer in enumerate(base.layers):
        if layer.name.startswith(prefix):
            return list(base.layers[index:])
    raise ValueError(f"{spec.name}: no layer named {prefix}* (keras.applications changed?)")
