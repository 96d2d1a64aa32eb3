"""Keras' file-writing callbacks, made to write atomically.

`CSVLogger`, `ModelCheckpoint` and `BackupAndRestore` write their files in
place: a kill or a full disk in the middle of a write leaves a truncated CSV
or `.weights.h5` that the next run reads back (or crashes on). These
subclasses change only where the bytes go: each file is written under a
temporary name next to it (`keras_geo.paths.atomic_write`) and renamed into
place, and weights are written only when the disk has room for them, so h5py
never meets a full disk halfway through a file. A failed write raises
`keras_geo.errors.StorageError` naming the file; the previous file is intact.
"""

import contextlib
import io
import json
import os
import pathlib

import h5py
import keras
import numpy as np

from keras_geo import paths
from keras_geo.errors import StorageError


def weights_nbytes(model):
    """Bytes of `model`'s weights and optimizer state: about its `.weights.h5` size."""
    variables = list(model.weights)
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and optimizer.built:  # Keras saves its slots too.
        variables += list(optimizer.variables)
    return sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)


def save_weights(model, path):
    """`model.save_weights(path)`, atomically, after checking the free space."""
    paths.check_space(path, weights_nbytes(model))
    with _closing_h5_on_error(), paths.atomic_write(path) as tmp:
        model.save_weights(str(tmp))


@contextlib.contextmanager
def _closing_h5_on_error():
    """Closes the files h5py still holds when a write fails (e.g. the disk filled up).

    Keras leaves the failed file open; h5py then frees it at interpreter exit,
    after HDF5 itself, and the process dies with a segmentation fault instead
    of exiting with the one-line error.
    """
    try:
        yield
    except StorageError:
        for file_id in h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE):
            with contextlib.suppress(Exception):  # The flush of a full disk fails again.
                h5py.File(file_id).close()
        raise


class AtomicCSVLogger(keras.callbacks.CSVLogger):
    """`CSVLogger` that rewrites the whole file atomically after every epoch."""

    def on_train_begin(self, logs=None):
        path = pathlib.Path(self.filename)
        self._previous = path.read_text() if self.append and path.is_file() else ""
        self.append_header = not self._previous
        self.csv_file = io.StringIO()  # The rows of this fit; the parent writes them.
        self.writer = None
        self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        paths.write_text(self.filename, self._previous + self.csv_file.getvalue())


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """`ModelCheckpoint` (weights only) that never leaves a half-written file."""

    def _should_save_model(self, epoch, batch, logs, filepath):
        should = super()._should_save_model(epoch, batch, logs, filepath)
        if should:
            paths.check_space(self._final, weights_nbytes(self.model))
        return should

    def _save_model(self, epoch, batch, logs):
        self._final = self.filepath
        try:
            # `optional`: an epoch that is not the best writes nothing.
            with _closing_h5_on_error(), paths.atomic_write(self.filepath, optional=True) as tmp:
                self.filepath = str(tmp)
                super()._save_model(epoch, batch, logs)
        finally:
            self.filepath = self._final


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` whose weights and metadata are each written atomically.

    The weights go first: the metadata never names an epoch whose weights
    are not on disk.
    """

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        save_weights(self.model, self._weights_path)
        metadata = {"epoch": self._current_epoch, "batch": self._last_batch_seen}
        paths.write_text(self._training_metadata_path, json.dumps(metadata))
