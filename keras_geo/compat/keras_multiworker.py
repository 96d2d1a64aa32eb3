"""Keras 3 `fit` under `MultiWorkerMirroredStrategy`: the patch it needs.

Upstream: keras-team/keras#20585 (open). Checked on Keras 3.15 (setup.cfg
pins `keras>=3.15,<3.16`); `tests/test_distribute.py` runs two workers with
each half of the patch left out and fails when a Keras release makes either
half unnecessary, or breaks it.
"""

import contextlib

import keras

# Workaround for keras-team/keras#20585 (open; Keras 3.x `fit` under
# MultiWorkerMirroredStrategy). Two places break:
# 1. `fit`/`evaluate` build the model symbolically from a real first batch,
#    which `_maybe_symbolic_build` reduces across workers with
#    `strategy.reduce("MEAN", per_replica_batch, axis=None)`: "Attempt to
#    convert a value (PerReplica ...)". Fix: build from this worker's local
#    part of that batch (only its shapes matter).
# 2. `reduce_per_replica` reduces each scalar log with
#    `strategy.reduce("MEAN", v, axis=0)` under multi-worker: "Invalid
#    reduction dimension 0 for input with 0 dimensions". Fix: train/test
#    steps return their logs with shape [1]; the MEAN over axis 0 of the
#    replicas' logs is then the scalar Keras expects.
# Active only inside `keras_multiworker_fix()` (training enters it only for
# `--strategy multiworker`). tests/test_distribute.py fails when a Keras
# release makes either part unnecessary or breaks it; setup.cfg pins the
# Keras minor it was tested on (3.15): widen the pin only after that test.
_SHIM_PARTS = ("build", "logs")


@contextlib.contextmanager
def keras_multiworker_fix(parts=_SHIM_PARTS):
    """Patches `keras.Model` for multi-worker `fit` while the block runs.

    Args:
        parts: which halves of the fix to apply ("build", "logs"); tests
            apply one at a time to show each is still needed.
    """
    patches = {}
    if "build" in parts:
        patches["_maybe_symbolic_build"] = _build_on_local_batch(keras.Model._maybe_symbolic_build)
    if "logs" in parts:
        patches["train_step"] = _rank1_logs(keras.Model.train_step)
        patches["test_step"] = _rank1_logs(keras.Model.test_step)
    saved = {name: keras.Model.__dict__.get(name) for name in patches}
    for name, value in patches.items():
        setattr(keras.Model, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                delattr(keras.Model, name)
            else:
                setattr(keras.Model, name, value)


def _build_on_local_batch(upstream):
    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if iterator is not None:
            strategy = self.distribute_strategy
            for _, _, batches in iterator:
                batch = next(batches)
                data_batch = keras.tree.map_structure(
                    lambda v: strategy.experimental_local_results(v)[0], batch
                )
                break
        return upstream(self, data_batch=data_batch)

    return _maybe_symbolic_build


def _rank1_logs(upstream):
    def step(self, data):
        logs = upstream(self, data)
        return keras.tree.map_structure(lambda v: keras.ops.reshape(v, [1]), logs)

    step.__name__ = upstream.__name__
    return step
