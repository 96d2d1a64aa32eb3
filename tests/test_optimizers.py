"""Tests for keras_geo.compat.keras_adamw: Keras's AdamW updates, the rate traced once per step."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_geo.compat.keras_adamw import AdamW

SCHEDULE = dict(initial_learning_rate=0.0, decay_steps=6, warmup_target=3e-2, warmup_steps=2)


def _variables(n=3):
    return [keras.Variable(np.linspace(-1.0, 1.0, 4, dtype="float32") * (i + 1)) for i in range(n)]


def _optimizer(cls, variables):
    optimizer = cls(
        learning_rate=keras.optimizers.schedules.CosineDecay(**SCHEDULE), weight_decay=0.1
    )
    optimizer.build(variables)
    return optimizer


def _traced_conds(optimizer, variables):
    """Graph `cond`s (If / StatelessIf ops) in one traced `apply_gradients`."""

    def step(gradient):
        optimizer.apply_gradients([(gradient * (i + 1), v) for i, v in enumerate(variables)])

    graph = tf.function(step).get_concrete_function(tf.TensorSpec([4], tf.float32)).graph
    return sum(op.type in ("If", "StatelessIf") for op in graph.get_operations())


def _train(optimizer, variables, gradients):
    @tf.function
    def step(gradient):
        optimizer.apply([gradient * (i + 1) for i in range(len(variables))], variables)

    for gradient in gradients:
        step(gradient)


def test_same_updates_as_keras_adamw_through_warm_up_and_decay():
    gradients = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    ours, theirs = _variables(), _variables()
    optimizer = _optimizer(AdamW, ours)
    _train(optimizer, ours, gradients)
    _train(_optimizer(keras.optimizers.AdamW, theirs), theirs, gradients)
    assert int(optimizer.iterations) == 8  # 2 warm-up steps, 6 of decay
    for mine, reference in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(mine.numpy(), reference.numpy(), rtol=1e-6)
    assert not np.allclose(ours[0].numpy(), _variables()[0].numpy())  # it did train


def test_the_schedule_is_traced_once_per_step_and_the_optimizer_round_trips():
    variables = _variables()
    optimizer = _optimizer(AdamW, variables)
    assert _traced_conds(optimizer, variables) == 1  # the warm-up's cond, once
    assert float(optimizer.learning_rate) == pytest.approx(0.0)  # step 0, outside a step
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(restored, AdamW) and restored.weight_decay == pytest.approx(0.1)


def test_keras_adamw_still_evaluates_the_rate_once_per_variable():
    """Upstream behaviour that `keras_geo.compat.keras_adamw.AdamW` works around.

    When this fails, Keras evaluates the learning rate once per step (one
    cond, not one per variable): compile with `keras.optimizers.AdamW` again
    and drop `keras_geo.compat.keras_adamw`.
    """
    variables = _variables()
    optimizer = _optimizer(keras.optimizers.AdamW, variables)
    assert _traced_conds(optimizer, variables) == len(variables) + 1
