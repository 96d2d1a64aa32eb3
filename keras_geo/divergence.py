"""A run that diverges is not finished: a non-finite loss stops training with one line.

A learning rate of `1e30` (or weights that blow up for any reason) gives a
NaN loss from the first steps; Keras would train on, save the NaN model as
the "best" checkpoint and report the run finished. `StopOnDivergence` is
Keras' `TerminateOnNaN` with `raise_error=True`, raising `TrainingDiverged`
(a `UserError`: the CLI prints one line) instead of a `RuntimeError`, and
checking the epoch's validation loss too. It must come first in the
callback list: it raises before the epoch's history row, checkpoint and
backup are written.

A model whose weights are already broken (trained before this guard, or
edited) gives NaN probabilities: `check_probabilities` refuses them in
`predict`, the app and `evaluate`, so no answer or metrics file holds NaN.

What the run directory keeps: everything the epochs before wrote (their
history rows, the best checkpoint of the phase, the backup to resume from)
and nothing of the diverging epoch; the phase is not marked done and no
`model.keras` is written, so `predict`, `evaluate` and `export` refuse the
run ("No model at ...") instead of serving NaN.
"""

import math

import keras
import numpy as np

from keras_geo.errors import ModelError, UserError


class TrainingDiverged(UserError):
    """The loss became NaN or infinite: the run stopped, keeping only its finite epochs."""


class StopOnDivergence(keras.callbacks.TerminateOnNaN):
    """Raises `TrainingDiverged` at the first non-finite loss of a batch or epoch.

    Args:
        phase: the phase being trained, for the message.
        advice: what to change, e.g. "lower --learning-rate (now 1e+30)".

    Example:
        `model.fit(..., callbacks=[StopOnDivergence("frozen", "lower --learning-rate")])`
        on a model whose loss turns NaN stops at that batch with
        "training diverged: the loss is nan at batch 1 of epoch 1 (phase frozen) ...".
    """

    def __init__(self, phase, advice):
        super().__init__(raise_error=True)
        self.phase = phase
        self.advice = advice
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_batch_end(self, batch, logs=None):
        self._check((logs or {}).get("loss"), f"at batch {batch + 1} of epoch {self._epoch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        for name in ("loss", "val_loss"):
            self._check((logs or {}).get(name), f"({name}) in epoch {epoch + 1}")

    def _check(self, value, where):
        if value is None or math.isfinite(float(value)):
            return
        raise TrainingDiverged(
            f"training diverged: the loss is {float(value)} {where} (phase {self.phase}); "
            f"the run keeps its finished epochs and no model. Fix: {self.advice}, then "
            "start afresh with --overwrite or a new --run-dir."
        )


def check_probabilities(probabilities):
    """Raises `ModelError` unless every probability is finite.

    A NaN is no answer: it would print as a bare `NaN` in `predict --json`
    (not JSON), rank the countries at random and score as a class in metrics.
    """
    probabilities = np.asarray(probabilities)
    if not np.all(np.isfinite(probabilities)):
        bad = probabilities[~np.isfinite(probabilities)].flat[0]
        raise ModelError(
            f"the model gives non-finite probabilities ({bad}): its weights are broken "
            "(did its training diverge?); retrain it with a lower learning rate"
        )
