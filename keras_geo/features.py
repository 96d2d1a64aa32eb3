"""Frozen-phase feature cache: run the frozen backbone once, train the head fast.

In the frozen phase (feature extraction) only the head trains, so the
backbone's pooled features of an image never change. They are computed
once per dataset split (eval preprocessing: squash-resize, no augmentation),
optionally stored as `.npz` under a cache directory, and the head is trained on
them with a head-only model that SHARES the head layers of the full model:
when `fit_head_on_features` returns, the full model holds the trained head.
Every frozen epoch then costs a few matrix products instead of a ResNet50
forward pass per image, and `keras-geo tune --phase frozen` trials reuse the
same file.

Trade-off: the cached frozen phase sees each image exactly as evaluation
does, with no per-epoch augmentation (no random crop, flip or rotation).
The paper's frozen phase augmented every epoch; `TrainConfig.cache_features=
False` keeps that path (slower: the backbone runs on every image of every
epoch). The result equals training the frozen model on the same
non-augmented images (same head weights, up to float rounding).

Cache files are keyed by the backbone (`keras_geo.backbones`), a hash of its
weights (so "imagenet", a local `.h5` and a seeded random init all key
differently), the dtype policy,
the image size, the caller's `dataset_key` (e.g. "geoguessr/top20 3.0.0
/data") and the split: a stale file is never read; old files are only
orphaned (delete the directory to reclaim the space).
"""

import hashlib
import json
import os
import re
import weakref

import keras
import numpy as np

from keras_geo import paths, pipeline
from keras_geo.console import keras_verbose
from keras_geo.model import backbone, feature_extractor, head

CACHE_FORMAT = 2  # 2: the key names the backbone


def extract_features(model, ds, *, batch_size, verbose="auto", eager=False):
    """Backbone features of every image of `ds`, in order, with `Model.predict`.

    Args:
        model: From `keras_geo.model.build_model`.
        ds: Unbatched `(uint8 image, label)` dataset (not shuffled).
        batch_size: Images per forward pass.
        verbose: Passed to `Model.predict` (0 silent, 1 progress bar, 2 one line).
        eager: Call the backbone batch by batch in this process instead of
            `Model.predict`, which under a multi-worker strategy gathers
            across workers and so cannot run on the chief alone.

    Returns:
        `(features float32 [N, D], labels int64 [N])` (D: the backbone's width).
    """
    image_size = model.input_shape[1]
    extractor = _features_and_labels(model)
    if int(ds.cardinality()) == 0:  # `predict` refuses an empty dataset.
        return np.zeros((0, extractor.extractor.output_shape[-1]), np.float32), np.zeros(
            (0,), np.int64
        )
    stream = pipeline.eval_dataset(ds, image_size=image_size, batch_size=batch_size)
    if eager:
        batches = [
            (np.asarray(extractor(images), np.float32), np.asarray(labels, np.int64))
            for images, labels in stream
        ]
        features, labels = zip(*batches, strict=True)
        return np.concatenate(features), np.concatenate(labels).reshape(-1)
    features, labels = extractor.predict(stream, verbose=keras_verbose(verbose))
    return np.asarray(features, np.float32), np.asarray(labels, np.int64).reshape(-1)


_EXTRACTORS = weakref.WeakKeyDictionary()


def _features_and_labels(model):
    """`model`'s one `_FeaturesAndLabels`: the `predict` traced for one split serves the next."""
    if model not in _EXTRACTORS:
        _EXTRACTORS[model] = _FeaturesAndLabels(feature_extractor(model))
    return _EXTRACTORS[model]


class _FeaturesAndLabels(keras.Model):
    """Predicts `(features, labels)` from `(images, labels)` batches: one pass, both kept."""

    def __init__(self, extractor):
        super().__init__(name="features_and_labels")
        self.extractor = extractor

    def call(self, images):
        return self.extractor(images, training=False)

    def predict_step(self, data):
        images, labels = data
        return self(images), labels


def cache_key(model, ds, *, dataset_key, split):
    """Returns (digest, meta): what decides whether a cache file is valid."""
    base = backbone(model)
    meta = {
        "format": CACHE_FORMAT,
        "dataset": str(dataset_key),
        "split": str(split),
        "num_examples": int(ds.cardinality()),
        "element_spec": repr(ds.element_spec),
        "image_size": int(model.input_shape[1]),
        "dtype_policy": base.dtype_policy.name,
        "backbone": model.name,
        "preprocessing": "in-model; eval squash-resize antialias",
    }
    digest = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    for weight in base.weights:
        digest.update(weight.path.encode())
        digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
    return digest.hexdigest()[:24], meta


def cached_features(
    model,
    ds,
    *,
    batch_size,
    cache_dir=None,
    dataset_key=None,
    split="train",
    verbose="auto",
    eager=False,
):
    """`extract_features`, read from or written to `cache_dir` when given.

    Args:
        model, ds, batch_size, verbose, eager: As `extract_features`.
        cache_dir: Directory of `.npz` files, or None (compute, keep nothing).
        dataset_key: Names the dataset (name, version, data dir) in the key;
            the key also holds the split, the number of examples and the
            backbone weights' hash, so a cache dir private to one dataset
            (a run directory) may leave it None.
        split: The split's name, part of the key.

    Returns:
        `(features float32 [N, D], labels int64 [N])` (D: the backbone's width).
    """
    if cache_dir is None:
        return extract_features(model, ds, batch_size=batch_size, verbose=verbose, eager=eager)
    path, meta = cache_file(model, ds, cache_dir=cache_dir, dataset_key=dataset_key, split=split)
    if os.path.exists(path):
        with np.load(path) as data:
            if json.loads(str(data["meta"])) == meta:
                return data["features"], data["labels"]
    features, labels = extract_features(
        model, ds, batch_size=batch_size, verbose=verbose, eager=eager
    )
    write_cache(path, features, labels, meta)
    return features, labels


def cache_file(model, ds, *, cache_dir, dataset_key=None, split="train"):
    """Returns `(path, meta)` of the cache file of `ds` features under `cache_dir`."""
    digest, meta = cache_key(model, ds, dataset_key=dataset_key, split=split)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(split))
    return os.path.join(cache_dir, f"features-{slug}-{digest}.npz"), meta


def write_cache(path, features, labels, meta):
    """Writes a cache file atomically: a crash never leaves a half-written one."""
    with paths.atomic_write(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, features=features, labels=labels, meta=json.dumps(meta, sort_keys=True))


def compiled_head(model):
    """The head-only model (shared layers), compiled exactly as `model` is."""
    if not getattr(model, "compiled", False):
        raise ValueError("Compile the model first (keras_geo.model.compile_model).")
    head_model = head(model)
    head_model.compile_from_config(model.get_compile_config())
    return head_model


def fit_head_on_features(
    model,
    train_ds,
    val_ds=None,
    *,
    epochs,
    batch_size,
    callbacks=None,
    cache_dir=None,
    dataset_key=None,
    initial_epoch=0,
    shuffle=True,
    verbose="auto",
    image_size=None,
    **fit_kwargs,
):
    """Trains `model`'s head on cached backbone features (the frozen phase).

    `model` must be compiled (`compile_model`); the head-only model gets the
    same loss, metrics and optimizer settings, so the history has the same
    keys (`loss`, `accuracy`, `top5_accuracy`, `mean_km`, `val_*`).
    `keras.callbacks.ModelCheckpoint` and KerasTuner's `SaveBestEpoch`
    callbacks see the FULL model (their files load into `model` like those
    of an image-path phase, and `tuner.get_best_models()` works); every other
    callback sees the head-only model that `fit` runs (e.g. BackupAndRestore
    backs up and restores the head and its optimizer, and resumes the epoch).

    Args:
        model: Full model from `build_model`, compiled.
        train_ds: Unbatched `(uint8 image, label)` training split.
        val_ds: The same for validation, or None.
        epochs: Final epoch index, as `keras.Model.fit`.
        batch_size: Training batch size (also used to extract features).
        callbacks: Keras callbacks for the head-only fit.
        cache_dir: Where feature files live (None: in memory only).
        dataset_key: Names the dataset in the cache key (with `cache_dir`).
        initial_epoch: As `keras.Model.fit` (resume).
        shuffle: Shuffle the training features every epoch.
        verbose: As `keras.Model.fit`.
        image_size: Optional check: must equal the model's input size.
        **fit_kwargs: Passed on to the head-only `fit`.

    Returns:
        The `keras.callbacks.History` of the head-only fit.
    """
    if image_size is not None and image_size != model.input_shape[1]:
        raise ValueError(
            f"`image_size` {image_size} differs from the model's input size {model.input_shape[1]}."
        )
    head_model = compiled_head(model)
    kwargs = dict(
        batch_size=batch_size, cache_dir=cache_dir, dataset_key=dataset_key, verbose=verbose
    )
    train_x, train_y = cached_features(model, train_ds, split="train", **kwargs)
    validation = None
    if val_ds is not None:
        validation = cached_features(model, val_ds, split="validation", **kwargs)
    return head_model.fit(
        train_x,
        train_y,
        batch_size=batch_size,
        epochs=epochs,
        validation_data=validation,
        callbacks=[_bind(callback, model) for callback in callbacks or []],
        initial_epoch=initial_epoch,
        shuffle=shuffle,
        verbose=keras_verbose(verbose),
        **fit_kwargs,
    )


def _bind(callback, model):
    """A `ModelCheckpoint` saves `self.model`: bound to the FULL model, not the head.

    (KerasTuner's own `SaveBestEpoch` is never added: `tuning.GeoTuner` writes
    no per-trial checkpoint.)
    """
    if isinstance(callback, keras.callbacks.ModelCheckpoint):
        return _BoundCallback(callback, model)
    return callback


class _BoundCallback(keras.callbacks.Callback):
    """Forwards every hook to `callback`, whose `model` stays `target`."""

    def __init__(self, callback, target):
        super().__init__()
        self.callback = callback
        self.target = target

    def set_model(self, model):
        self.callback.set_model(self.target)

    def set_params(self, params):
        self.callback.set_params(params)


def _forward(name):
    def hook(self, *args, **kwargs):
        return getattr(self.callback, name)(*args, **kwargs)

    hook.__name__ = name
    return hook


for _hook in [name for name in dir(keras.callbacks.Callback) if name.startswith("on_")]:
    setattr(_BoundCallback, _hook, _forward(_hook))
