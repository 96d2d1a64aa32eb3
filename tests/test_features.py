"""Tests for keras_geo.features: cached-feature path == image path, cache reuse."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from train_helpers import compile_eagerly

from keras_geo import features, pipeline
from keras_geo import model as geo_model

SIZE = 32
NUM_CLASSES = 4
N = 6


def _images(seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (N, 40, 40, 3)).astype(np.uint8)  # resized to 32


def _dataset(seed=0):
    labels = np.arange(N, dtype=np.int64) % NUM_CLASSES
    return tf.data.Dataset.from_tensor_slices((_images(seed), labels))


def _built(seed=0):
    keras.utils.set_random_seed(seed)
    model = geo_model.build_model(NUM_CLASSES, image_size=SIZE, weights=None)
    compile_eagerly(model)
    return model


@pytest.fixture(scope="module")
def model():
    return _built()


def _eval_images(seed=0):
    return pipeline.resize_for_eval(_images(seed), image_size=SIZE)


def _head_kernel(model):
    return model.get_layer("head").kernel.numpy().copy()


def test_cached_feature_path_equals_image_path(model):
    feats, labels = features.extract_features(model, _dataset(), batch_size=4, verbose=0)
    assert feats.shape == (N, geo_model.FEATURE_DIM) and feats.dtype == np.float32
    np.testing.assert_array_equal(labels, np.arange(N) % NUM_CLASSES)
    from_features = keras.ops.convert_to_numpy(geo_model.head(model)(feats))
    from_images = keras.ops.convert_to_numpy(model(_eval_images()))
    assert np.abs(from_features - from_images).max() < 1e-5


def test_one_predict_trace_serves_every_split(monkeypatch):
    traces = []
    predict_step = features._FeaturesAndLabels.predict_step

    def counting(self, data):
        traces.append(data)
        return predict_step(self, data)

    monkeypatch.setattr(features._FeaturesAndLabels, "predict_step", counting)
    model = _built()
    train, _ = features.extract_features(model, _dataset(), batch_size=3, verbose=0)
    validation, _ = features.extract_features(model, _dataset(1), batch_size=3, verbose=0)
    assert len(traces) == 1  # 6 images in 2 batches of 3, twice: one trace
    assert not np.allclose(train, validation)  # each split's own images


def test_cache_file_is_written_then_reused(model, tmp_path, monkeypatch):
    kwargs = dict(batch_size=4, cache_dir=str(tmp_path), dataset_key="toy", verbose=0)
    feats, labels = features.cached_features(model, _dataset(), split="train", **kwargs)
    files = os.listdir(tmp_path)
    assert len(files) == 1 and files[0].startswith("features-train-")

    def must_not_run(*args, **kwargs):
        raise AssertionError("features recomputed instead of read from the cache")

    monkeypatch.setattr(features, "extract_features", must_not_run)
    again, again_labels = features.cached_features(model, _dataset(), split="train", **kwargs)
    np.testing.assert_array_equal(again, feats)
    np.testing.assert_array_equal(again_labels, labels)


def test_cache_key_changes_with_weights_split_size_and_dataset(model):
    ds = _dataset()
    key, _ = features.cache_key(model, ds, dataset_key="toy", split="train")
    assert features.cache_key(model, ds, dataset_key="toy", split="train")[0] == key
    assert features.cache_key(model, ds, dataset_key="toy", split="validation")[0] != key
    assert features.cache_key(model, ds, dataset_key="other", split="train")[0] != key
    assert features.cache_key(model, ds.take(3), dataset_key="toy", split="train")[0] != key
    other = _built(seed=1)  # another random init: other weights
    assert features.cache_key(other, ds, dataset_key="toy", split="train")[0] != key
    bigger = geo_model.build_model(NUM_CLASSES, image_size=SIZE + 8, weights=None)
    bigger.set_weights(model.get_weights())
    assert features.cache_key(bigger, ds, dataset_key="toy", split="train")[0] != key


class Checkpoint(keras.callbacks.ModelCheckpoint):
    """A ModelCheckpoint subclass: recognised with isinstance, so bound to the full model."""

    def on_train_begin(self, logs=None):
        self.seen = self.model


class Recorder(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seen = self.model


def test_fit_on_features_trains_the_full_models_head(tmp_path):
    model = _built(seed=2)
    before = _head_kernel(model)
    body_before = geo_model.backbone(model).get_layer("conv5_block3_3_conv").kernel.numpy().copy()
    best = tmp_path / "best.weights.h5"
    checkpoint = keras.callbacks.ModelCheckpoint(
        str(best), monitor="val_accuracy", mode="max", save_best_only=True, save_weights_only=True
    )
    history = features.fit_head_on_features(
        model,
        _dataset(),
        _dataset(seed=1),
        epochs=2,
        batch_size=3,
        callbacks=[
            checkpoint,
            saver := Checkpoint(str(tmp_path / "x.keras")),
            recorder := Recorder(),
        ],
        cache_dir=str(tmp_path / "cache"),
        image_size=SIZE,
        verbose=0,
    )
    assert {"loss", "accuracy", "top5_accuracy", "val_loss", "val_accuracy"} <= set(history.history)
    assert len(history.history["loss"]) == 2
    assert saver.seen is model  # savers save the full model
    assert recorder.seen.name == "geo_head"  # the others see the fitted head model
    assert not np.array_equal(_head_kernel(model), before)
    np.testing.assert_array_equal(
        geo_model.backbone(model).get_layer("conv5_block3_3_conv").kernel.numpy(), body_before
    )
    assert len(os.listdir(tmp_path / "cache")) == 2  # train and validation
    # The checkpoint holds the FULL model: it loads into a fresh one.
    fresh = geo_model.build_model(NUM_CLASSES, image_size=SIZE, weights=None)
    fresh.load_weights(best)
    assert fresh.get_layer("head").kernel.shape == model.get_layer("head").kernel.shape


def test_same_head_as_training_the_frozen_model_on_images():
    by_images, by_features = _built(seed=3), _built(seed=3)
    np.testing.assert_array_equal(_head_kernel(by_images), _head_kernel(by_features))
    stream = pipeline.eval_dataset(_dataset(), image_size=SIZE, batch_size=3)
    by_images.fit(stream, epochs=1, verbose=0)
    features.fit_head_on_features(
        by_features, _dataset(), epochs=1, batch_size=3, shuffle=False, verbose=0
    )
    assert not np.array_equal(_head_kernel(by_images), _head_kernel(_built(seed=3)))
    np.testing.assert_allclose(_head_kernel(by_features), _head_kernel(by_images), atol=1e-5)


def test_uncompiled_model_is_refused():
    model = geo_model.build_model(NUM_CLASSES, image_size=SIZE, weights=None)
    with pytest.raises(ValueError, match="Compile the model first"):
        features.fit_head_on_features(model, _dataset(), epochs=1, batch_size=2)
