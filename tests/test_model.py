"""Tests for keras_geo.model: layout, preprocessing, phases, weights, errors."""

import os

import keras
import numpy as np
import pytest
from train_helpers import compile_eagerly

from keras_geo import model as geo_model
from keras_geo.errors import UserError

SIZE = 32
NUM_CLASSES = 5
# conv5: block1 has 4 convs (with the shortcut), blocks 2 and 3 have 3 each,
# each a kernel and a bias; the head Dense has a kernel and a bias.
CONV5_WEIGHTS = (4 + 3 + 3) * 2
HEAD_WEIGHTS = 2


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return geo_model.build_model(NUM_CLASSES, image_size=SIZE, weights=None)


def _images(n=4, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE, 3)).astype("float32")


def test_layout(model):
    names = [layer.name for layer in model.layers]
    assert names == ["image", "preprocess", "backbone", "head"]
    assert model.input_shape == (None, SIZE, SIZE, 3)
    assert model.output_shape == (None, NUM_CLASSES)
    assert model.get_layer("head").dtype_policy.name == "float32"
    assert geo_model.backbone(model).output.shape[-1] == geo_model.FEATURE_DIM


def test_output_is_probabilities(model):
    probs = keras.ops.convert_to_numpy(model(_images()))
    assert probs.dtype == np.float32
    assert probs.shape == (4, NUM_CLASSES)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs >= 0).all()


def test_uint8_input_equals_float_input(model):
    images = _images()
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(images.astype("uint8"))),
        keras.ops.convert_to_numpy(model(images)),
        atol=1e-6,
    )


@pytest.mark.parametrize("layer", [geo_model.caffe_preprocessing, geo_model.CaffePreprocessing])
def test_preprocessing_equals_keras_resnet50_preprocess_input(layer):
    images = _images() + np.random.default_rng(1).uniform(0, 1, (1, SIZE, SIZE, 3))
    images = images.astype("float32")  # Not only whole numbers: resized pixels are not.
    ours = keras.ops.convert_to_numpy(layer()(images))
    theirs = keras.applications.resnet50.preprocess_input(images.copy())
    np.testing.assert_array_equal(ours, theirs)
    red = keras.ops.convert_to_numpy(layer()(np.array([[[[255.0, 0, 0]]]])))
    np.testing.assert_allclose(red[0, 0, 0], [-103.939, -116.779, 131.32], atol=1e-4)


def test_preprocessing_is_a_stock_layer_that_never_trains(model):
    layer = model.get_layer("preprocess")
    assert type(layer) is keras.layers.Dense
    geo_model.set_phase(model, "finetune", stages="all", train_batchnorm=True)
    assert not layer.trainable and not layer.trainable_weights
    geo_model.set_phase(model, "frozen")


def _trainable_names(model):
    return sorted(w.path for w in model.trainable_weights)


def test_frozen_phase_trains_only_the_head(model):
    geo_model.set_phase(model, "frozen")
    names = _trainable_names(model)
    assert len(names) == HEAD_WEIGHTS
    assert all(name.startswith("head/") for name in names)


def test_finetune_phase_trains_conv5_without_batchnorm(model):
    geo_model.set_phase(model, "finetune")
    try:
        names = _trainable_names(model)
        assert len(names) == HEAD_WEIGHTS + CONV5_WEIGHTS
        body = [n for n in names if not n.startswith("head/")]
        assert all(n.startswith("conv5_") and "_bn/" not in n for n in body)
        trainable_layers = [
            layer.name for layer in geo_model.backbone(model).layers if layer.trainable_weights
        ]
        assert trainable_layers[0] == "conv5_block1_1_conv"
        assert all("_bn" not in name for name in trainable_layers)
    finally:
        geo_model.set_phase(model, "frozen")


def test_finetune_step_keeps_batchnorm_statistics_and_changes_conv5():
    keras.utils.set_random_seed(1)
    model = geo_model.build_model(NUM_CLASSES, image_size=SIZE, weights=None)
    geo_model.set_phase(model, "finetune")
    compile_eagerly(model)
    base = geo_model.backbone(model)
    bn = {w.path: w.numpy().copy() for w in base.weights if "_bn/" in w.path}
    conv4 = base.get_layer("conv4_block6_3_conv").kernel.numpy().copy()
    conv5 = base.get_layer("conv5_block3_3_conv").kernel.numpy().copy()
    model.fit(_images(), np.arange(4) % NUM_CLASSES, epochs=1, batch_size=4, verbose=0)
    for w in base.weights:
        if w.path in bn:
            np.testing.assert_array_equal(w.numpy(), bn[w.path], err_msg=w.path)
    np.testing.assert_array_equal(base.get_layer("conv4_block6_3_conv").kernel.numpy(), conv4)
    assert not np.array_equal(base.get_layer("conv5_block3_3_conv").kernel.numpy(), conv5)


def test_unknown_phase_is_a_user_error(model):
    with pytest.raises(UserError, match="unknown phase 'all'"):
        geo_model.set_phase(model, "all")


@pytest.mark.parametrize("size", [31, 16])
def test_too_small_image_size_is_a_user_error(size):
    with pytest.raises(UserError, match="image_size"):
        geo_model.build_model(NUM_CLASSES, image_size=size, weights=None)


def test_missing_weights_file_is_a_user_error(tmp_path):
    path = tmp_path / "nope.h5"
    with pytest.raises(UserError, match="weights file not found: .*nope.h5"):
        geo_model.build_model(NUM_CLASSES, image_size=SIZE, weights=str(path))


def test_weights_file_that_does_not_fit_is_a_user_error(tmp_path):
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
    path = tmp_path / "other.weights.h5"
    other.save_weights(path)
    with pytest.raises(UserError, match="other.weights.h5 does not fit ResNet50"):
        geo_model.build_model(NUM_CLASSES, image_size=SIZE, weights=str(path))
    garbage = tmp_path / "garbage.h5"
    garbage.write_text("not hdf5")
    with pytest.raises(UserError, match="garbage.h5 does not fit ResNet50"):
        geo_model.build_model(NUM_CLASSES, image_size=SIZE, weights=str(garbage))


def test_local_weights_file_is_loaded(model, tmp_path):
    path = os.path.join(tmp_path, "backbone.weights.h5")
    geo_model.backbone(model).save_weights(path)
    loaded = geo_model.build_model(NUM_CLASSES, image_size=SIZE, weights=path)
    for a, b in zip(
        geo_model.backbone(model).weights, geo_model.backbone(loaded).weights, strict=True
    ):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_imagenet_download_failure_is_a_user_error(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(UserError, match="could not download ImageNet weights.*--weights none"):
        geo_model.build_model(NUM_CLASSES, image_size=SIZE, weights="imagenet")


@pytest.mark.parametrize("weights", [None, "none", "None"])
def test_no_weights_spellings(weights, monkeypatch):
    monkeypatch.setattr(keras.utils, "get_file", None)  # must not download
    assert geo_model.resolve_weights(weights) is None


def test_compile_model_metrics(model):
    compile_eagerly(model)
    assert isinstance(model.optimizer, keras.optimizers.AdamW)
    assert model.optimizer.weight_decay == pytest.approx(1e-4)
    logs = model.evaluate(_images(), np.arange(4), batch_size=4, verbose=0, return_dict=True)
    assert {"loss", "accuracy", "top5_accuracy"} <= set(logs)


def test_compile_model_with_mean_km():
    names = ["Japan", "France", "Brazil"]
    model = geo_model.build_model(len(names), image_size=SIZE, weights=None)
    compile_eagerly(model, learning_rate=1e-3, class_names=names)
    logs = model.evaluate(_images(3), np.arange(3), verbose=0, return_dict=True)
    assert "mean_km" in logs and "top5_accuracy" in logs


def test_mixed_precision_forward_and_train_step():
    before = keras.config.dtype_policy().name
    keras.utils.set_random_seed(2)
    model = geo_model.build_model(NUM_CLASSES, image_size=SIZE, weights=None, mixed_precision=True)
    assert keras.config.dtype_policy().name == before  # global policy restored
    assert geo_model.backbone(model).get_layer("conv1_conv").compute_dtype == "float16"
    assert model.get_layer("head").compute_dtype == "float32"
    probs = keras.ops.convert_to_numpy(model(_images()))
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-3)
    compile_eagerly(model)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    kernel = model.get_layer("head").kernel.numpy().copy()
    history = model.fit(_images(), np.arange(4) % NUM_CLASSES, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert not np.array_equal(model.get_layer("head").kernel.numpy(), kernel)


def _tiny_classifier():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])


def _train_step_traces(model):
    """Fits `model` for 2 epochs (traced, not eager); returns how often `train_step` was traced."""
    traces = []
    train_step = model.train_step

    def counting(data):
        traces.append(data)
        return train_step(data)

    model.train_step = counting
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    model.fit(x, np.arange(8) % 3, batch_size=4, epochs=2, verbose=0)
    return len(traces)


def test_compiled_model_traces_its_train_step_once():
    model = _tiny_classifier()
    geo_model.compile_model(
        model,
        loss=keras.losses.SparseCategoricalCrossentropy(),
        learning_rate=1e-2,
        weight_decay=1e-4,
        class_names=None,
        jit_compile=False,
    )
    assert model.optimizer.built
    assert _train_step_traces(model) == 1


def test_keras_still_creates_the_optimizer_slots_in_the_first_trace():
    """Upstream behaviour that `keras_geo.compat.keras_slots` works around.

    When this fails, Keras builds the optimizer before tracing the train step
    (no second trace): `compile_model`'s `build_optimizer_slots` can go.
    """
    model = _tiny_classifier()
    model.compile(optimizer="adamw", loss="sparse_categorical_crossentropy", jit_compile=False)
    assert _train_step_traces(model) == 2
