"""The training optimizer: Keras's AdamW, its learning rate computed once per step.

Why not `keras.optimizers.AdamW` itself: the TensorFlow backend evaluates the
learning rate once per trainable variable for the decoupled weight decay
(`_apply_weight_decay` in keras/src/backend/tensorflow/optimizer.py, Keras
3.15). With a schedule, that traces the schedule's ops (and the `cond` of its
warm-up) 243 times for EfficientNetV2B0: about 12 s of the first training step
on a 2-core CPU, and as many scalar ops more in every step. `AdamW` computes
the rate once at the start of `apply` and hands that tensor out for the rest
of the step; the updates are unchanged (the step counter only moves at the end
of `apply`). `tests/test_optimizers.py` notices when Keras no longer needs it.
"""

import keras


@keras.saving.register_keras_serializable(package="keras_geo")
class AdamW(keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` that evaluates its learning-rate schedule once per step."""

    _step_learning_rate = None

    def apply(self, grads, trainable_variables=None):
        self._step_learning_rate = super()._get_current_learning_rate()
        try:
            return super().apply(grads, trainable_variables)
        finally:
            self._step_learning_rate = None

    def _get_current_learning_rate(self):
        if self._step_learning_rate is not None:
            return self._step_learning_rate
        return super()._get_current_learning_rate()
