"""TensorFlow Datasets behaviour `keras_geo.datasets` works around.

- `is_prepared`: `DatasetBuilder.is_prepared()` logs an absl warning
  ("Variant folder ... has no dataset_info.json") when it merely checks a
  dataset that was never built (tensorflow/datasets#2613); `keras-geo demo`
  started with two such lines. Silenced for the call.
- `is_disk_full`: a full disk during `download_and_prepare` reaches us as a
  `RuntimeError` (TFDS wraps the `tf.errors` one of its writer) whose type
  says nothing; only the operating system's text, "No space left on device",
  does. An `OSError` anywhere in the chain is matched by its errno first.

The builder's own override of TFDS' `_download_and_prepare` (a `.zip` as the
manual dir, the build report) lives with the builder
(`tfds_geoguessr/geoguessr/geoguessr_dataset_builder.py`), the layer below.

Checked on tensorflow-datasets 4.9.3 to 4.9.10 (setup.cfg pins `<4.10`);
`tests/test_datasets.py` fails when TFDS stops logging the warning, and
`tests/test_build_reliability.py` builds on a full disk.
"""

import contextlib
import errno
import logging

_DISK_FULL_TEXT = "No space left on device"


def is_prepared(ds_builder):
    """`ds_builder.is_prepared()` without TFDS' absl warning for a dataset not built yet."""
    absl_logger = logging.getLogger("absl")
    with contextlib.ExitStack() as stack:
        stack.callback(absl_logger.setLevel, absl_logger.level)
        absl_logger.setLevel(logging.ERROR)
        return ds_builder.is_prepared()


def is_disk_full(error):
    """Whether `error`, raised by TFDS' `download_and_prepare`, is a full disk."""
    chain, cause = [], error
    while cause is not None and cause not in chain:  # A chain may loop.
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    if any(isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT) for e in chain):
        return True
    return _DISK_FULL_TEXT in str(error)
