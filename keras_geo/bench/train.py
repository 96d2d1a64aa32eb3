"""`keras-geo bench train`: training-step throughput of one phase.

Steps run on in-memory random pixels (no input pipeline), so the figure is
the model's alone, on whatever device TensorFlow sees. Phases:

- `frozen`: backbone frozen, the head trains (forward pass + a tiny backward);
- `finetune`: the backbone's last `finetune_stages` stages train (1: ResNet
  `conv5_*`) with BatchNorm frozen, as `keras-geo train` with pretrained
  weights; `finetune_stages="all"` trains every layer but BatchNorm, the
  baseline a fine-tuning step is compared with.

The loss is plain sparse cross-entropy: the haversine term costs a
[B, C] x [C] product, nothing next to ResNet50.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from keras_geo import model as geo_model
from keras_geo.bench.timing import cpu_model, rates, timed_loop
from keras_geo.config import PHASES
from keras_geo.errors import UserError


def device_description():
    """Names the devices TensorFlow sees, e.g. 'CPU (2 cores, AMD EPYC)'."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        names = [
            tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
            for gpu in gpus
        ]
        return "GPU: " + ", ".join(names)
    return f"CPU ({os.cpu_count()} cores, {cpu_model()})"


def build_for_phase(
    phase,
    *,
    num_classes=20,
    image_size=224,
    weights="none",
    mixed_precision=False,
    backbone="resnet50",
    finetune_stages="1",
):
    """Builds and compiles the project's model with `phase`'s trainable layers."""
    if phase not in PHASES:
        raise UserError(f"unknown phase {phase!r}; use one of {', '.join(PHASES)}")
    model = geo_model.build_model(
        num_classes,
        backbone=backbone,
        image_size=image_size,
        weights=weights,
        mixed_precision=mixed_precision,
    )
    if phase == "finetune":  # BatchNorm frozen, in inference mode
        geo_model.set_phase(model, phase, stages=finetune_stages)
    else:
        geo_model.set_phase(model, phase)
    geo_model.compile_model(
        model,
        loss=keras.losses.SparseCategoricalCrossentropy(),
        learning_rate=1e-4,
        weight_decay=1e-4,
        class_names=None,
    )
    return model


def run_train(
    phase,
    *,
    image_size=224,
    batch_size=16,
    steps=5,
    mixed_precision=False,
    weights="none",
    num_classes=20,
    seed=0,
    backbone="resnet50",
    finetune_stages="1",
):
    """Times `steps` training steps after 2 warm-up steps; returns a dict."""
    model = build_for_phase(
        phase,
        num_classes=num_classes,
        image_size=image_size,
        weights=weights,
        mixed_precision=mixed_precision,
        backbone=backbone,
        finetune_stages=finetune_stages,
    )
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 255, (batch_size, image_size, image_size, 3)).astype("float32")
    labels = rng.integers(0, num_classes, (batch_size,))

    def step():
        model.train_on_batch(images, labels)
        return batch_size

    timing = timed_loop(step, seconds=None, warmup_steps=2, max_steps=steps)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    return {
        "benchmark": "train",
        "phase": phase,
        "finetune_stages": finetune_stages if phase == "finetune" else None,
        "backbone": backbone,
        "parameters": model.count_params(),
        "device": device_description(),
        "image_size": image_size,
        "batch_size": batch_size,
        "mixed_precision": mixed_precision,
        "trainable_parameters": trainable,
        "steps": steps,
        **rates(timing),
    }
