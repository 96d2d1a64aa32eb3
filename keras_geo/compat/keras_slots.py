"""The optimizer's slots built before the first traced train step, not inside it.

With no distribution strategy, Keras' TensorFlow trainer builds the optimizer
(its moment slots) inside the first traced train step
(`_maybe_symbolic_build` in keras/src/backend/tensorflow/trainer.py), and a
`tf.function` that creates variables is traced twice
(tensorflow/tensorflow#48851): 25 s more for the demo's first fine-tuning
step on a 2-core CPU. `build_optimizer_slots` builds them eagerly, through
the public `Optimizer.build`. Checked on keras >=3.15,<3.16 (pinned in
`setup.cfg`); `tests/test_model.py::test_keras_still_creates_the_optimizer_slots_in_the_first_trace`
fails once Keras builds them before tracing, and this can go.
"""


def build_optimizer_slots(model):
    """Builds the compiled `model`'s optimizer variables for its trainable variables now."""
    model.optimizer.build(model.trainable_variables)
