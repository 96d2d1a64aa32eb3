"""Every backbone: build at 32 px (`weights=None`), unfreeze by stage, train
one step per phase, save and load as `.keras`, export as a SavedModel.

One model per backbone is built once (module fixture) and shared by the
asserts; every step runs eagerly (tracing EfficientNetV2S or ConvNeXt costs
more than one step).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from train_helpers import compile_eagerly

from keras_geo import backbones, export, runs
from keras_geo import model as geo_model
from keras_geo.config import TrainConfig
from keras_geo.errors import UserError

SIZE = 32
CLASS_NAMES = ["France", "Japan", "United States"]
# Layers of each backbone's last stage (what `finetune_stages=1` trains).
LAST_STAGE = {
    "resnet50": ("conv5_",),
    "resnet101": ("conv5_",),
    "vgg16": ("block5_",),
    "efficientnetv2b0": ("block6", "top_"),
    "efficientnetv2s": ("block6", "top_"),
    "convnext_tiny": (
        "convnext_tiny_stage_3",
        "convnext_tiny_downsampling_block_2",
        "layer_normalization",  # after the pooling
    ),
}


def _images(n=2, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE, 3)).astype("float32")


@pytest.fixture(scope="module", params=backbones.NAMES)
def built(request):
    keras.utils.set_random_seed(0)
    model = geo_model.build_model(
        len(CLASS_NAMES), backbone=request.param, image_size=SIZE, weights=None
    )
    return request.param, model


def _trainable_layers(model):
    base = geo_model.backbone(model)
    return [layer for layer in base.layers if layer.trainable_weights]


def test_registry_matches_last_stage_table():
    assert set(LAST_STAGE) == set(backbones.NAMES)


def test_trains_one_step_per_phase_with_the_expected_trainable_sets(built, tmp_path):
    name, model = built
    assert model.name == f"geo_{name}" and geo_model.backbone_spec(model).name == name
    assert model.output_shape == (None, len(CLASS_NAMES))
    spec = backbones.get(name)

    geo_model.set_phase(model, "frozen")
    assert _trainable_layers(model) == []
    compile_eagerly(model, learning_rate=1e-3)
    head = model.get_layer("head").kernel.numpy().copy()
    model.train_on_batch(_images(), np.array([0, 1]))
    assert not np.array_equal(model.get_layer("head").kernel.numpy(), head)

    geo_model.set_phase(model, "finetune", stages="1")
    last = _trainable_layers(model)
    expected = [
        layer.name
        for layer in geo_model.backbone(model).layers
        if layer.weights
        and layer.name.startswith(LAST_STAGE[name])
        and not isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert expected and [layer.name for layer in last] == expected
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in last)
    compile_eagerly(model, learning_rate=1e-3)
    before = [w.numpy().copy() for layer in last for w in layer.trainable_weights]
    model.train_on_batch(_images(), np.array([0, 1]))
    after = [w.numpy() for layer in last for w in layer.trainable_weights]
    assert any(not np.array_equal(a, b) for a, b in zip(after, before, strict=True))

    counts = []
    for stages in range(1, spec.num_stages + 1):
        geo_model.set_phase(model, "finetune", stages=str(stages))
        counts.append(len(model.trainable_weights))
    assert counts == sorted(counts) and counts[0] < counts[-1]

    geo_model.set_phase(model, "finetune", stages="all", train_batchnorm=True)
    base = geo_model.backbone(model)
    batchnorm = [
        layer for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert all(layer.trainable for layer in batchnorm)  # random weights: BatchNorm trains
    assert all(layer.trainable for layer in base.layers if layer.weights)
    with pytest.raises(UserError, match=f"1-{spec.num_stages} or 'all' for {name}"):
        geo_model.set_phase(model, "finetune", stages=str(spec.num_stages + 1))
    geo_model.set_phase(model, "frozen")


def test_saves_and_loads_as_keras(built, tmp_path):
    name, model = built
    config = TrainConfig(backbone=name, image_size=SIZE, weights="none")
    path = tmp_path / "model.keras"
    runs.save_model(model, path, CLASS_NAMES, config)
    loaded, class_names, loaded_config = runs.load_model(path)
    assert class_names == CLASS_NAMES and loaded_config.backbone == name
    assert geo_model.backbone_spec(loaded).name == name
    images = _images(3, seed=1)
    expected = keras.ops.convert_to_numpy(model(images))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(images)), expected, atol=1e-5)


# Exporting traces the whole graph: minutes for the deep backbones on a loaded
# 2-core CPU. The fast set covers each family (caffe VGG, EfficientNetV2's and
# ConvNeXt's built-in preprocessing; ResNet50 in test_export.py); the deeper
# twins of the same code path are slow tests.
_EXPORTS = [
    "vgg16",
    "efficientnetv2b0",
    "convnext_tiny",
    pytest.param("resnet101", marks=pytest.mark.slow),
    pytest.param("efficientnetv2s", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name", _EXPORTS)
def test_exports_a_saved_model_equal_to_keras(name, tmp_path):
    keras.utils.set_random_seed(0)
    model = geo_model.build_model(len(CLASS_NAMES), backbone=name, image_size=SIZE, weights=None)
    out = export.export_saved_model(model, CLASS_NAMES, tmp_path / "export", image_size=SIZE)
    images = _images(3, seed=1)
    served = tf.saved_model.load(str(out)).signatures["serve_pixels"]
    probabilities = served(images=tf.constant(images.astype("uint8")))["probabilities"]
    expected = keras.ops.convert_to_numpy(model(images))
    np.testing.assert_allclose(probabilities.numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("saved, wanted", [("vgg16", "resnet50"), ("resnet50", "resnet101")])
def test_weights_file_of_another_backbone_is_a_one_line_error(saved, wanted, tmp_path):
    path = tmp_path / f"{saved}.weights.h5"
    backbones.get(saved).build(SIZE).save_weights(path)
    spec = backbones.get(wanted)
    with pytest.raises(UserError, match=f"does not fit {spec.constructor}") as error:
        geo_model.build_model(2, backbone=wanted, image_size=SIZE, weights=str(path))
    assert spec.weights_file in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("name", backbones.NAMES)
def test_offline_imagenet_names_the_file_to_download(name, monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    spec = backbones.get(name)
    with pytest.raises(UserError) as error:
        geo_model.resolve_weights("imagenet", spec)
    message = str(error.value)
    assert spec.weights_url in message and f"--weights PATH/{spec.weights_file}" in message
    assert "\n" not in message


def test_unknown_backbone_and_too_many_stages_are_config_errors():
    with pytest.raises(ValueError, match="`backbone` must be one of 'resnet50', .*resnet5'"):
        TrainConfig(backbone="resnet5")
    with pytest.raises(ValueError, match="`finetune_stages` must be 1-4 or 'all'.*'5'"):
        TrainConfig(backbone="convnext_tiny", finetune_stages="5")
    assert TrainConfig(finetune_stages=5).finetune_stages == "5"
    assert TrainConfig(finetune_stages="all").finetune_stages == "all"
