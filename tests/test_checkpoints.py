"""`keras_geo.compat.keras_callbacks`: Keras' writers on a disk that fills up mid-run."""

import os

import keras
import numpy as np
import pytest
from train_helpers import EpochCounter

from keras_geo import paths, runs, training
from keras_geo.config import TrainConfig
from keras_geo.errors import StorageError


def _tiny_model():
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3, "softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _temporary_files(folder):
    return sorted(p.name for p in folder.rglob(f"{paths.TMP_PREFIX}*"))


class FillDiskAfterEpoch(keras.callbacks.Callback):
    """Fills the disk of `folder` at the end of epoch `epoch` (before the phase's writers)."""

    def __init__(self, folder, epoch):
        super().__init__()
        self.filler = folder / "filler"
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch != self.epoch:
            return
        with open(self.filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass


def test_a_full_disk_mid_phase_fails_in_one_line_and_a_rerun_resumes(tmpfs):
    run_dir = tmpfs("4m") / "run"
    x = np.random.default_rng(0).normal(size=(32, 8)).astype("float32")
    y = np.arange(32) % 3

    def fit(*extra):
        counter = EpochCounter()
        model = _tiny_model()
        callbacks = [*extra, counter, *training._phase_callbacks(run_dir, "frozen", TrainConfig())]
        model.fit(x, y, validation_data=(x, y), epochs=3, callbacks=callbacks, verbose=0)
        return counter.epochs

    with pytest.raises(StorageError) as error:
        fit(FillDiskAfterEpoch(run_dir.parent, epoch=1))
    message = str(error.value)
    assert message.startswith(f"cannot write {run_dir}/")
    assert "No space left on device" in message and "\n" not in message
    assert _temporary_files(run_dir) == []
    (run_dir.parent / "filler").unlink()  # Space is freed.

    assert fit() == [1, 2]  # Epoch 0 is not redone; epoch 1 (whose writes failed) is.
    assert [int(row["epoch"]) for row in runs.read_history(run_dir, "frozen")] == [0, 1, 2]
    _tiny_model().load_weights(runs.checkpoint_path(run_dir, "frozen"))  # A whole file.
    assert _temporary_files(run_dir) == []


H5_ON_A_FULL_DISK = """
import sys
import keras
from keras_geo import paths
from keras_geo.compat import keras_callbacks as checkpoints
from keras_geo.errors import StorageError

paths.check_space = lambda path, nbytes: None  # As if the disk filled up meanwhile.
model = keras.Sequential([keras.Input((100,)), keras.layers.Dense(5000)])  # 2 MB
try:
    checkpoints.save_weights(model, sys.argv[1])
except StorageError as error:
    print(error, file=sys.stderr)
    sys.exit(1)
"""


def test_an_h5_write_that_meets_a_full_disk_exits_cleanly(tmpfs, tmp_path):
    import subprocess
    import sys

    target = tmpfs("1m") / "best.weights.h5"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", H5_ON_A_FULL_DISK, str(target)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr[-2000:]  # Not -11: no segmentation fault.
    assert done.stderr.strip().splitlines()[-1].startswith(f"cannot write {target} (")
    assert "Exception ignored" not in done.stderr
    assert list(target.parent.iterdir()) == []
