"""Training past one machine: the TF_CONFIG cluster, its chief, and Keras shims.

`--strategy multiworker` runs `tf.distribute.MultiWorkerMirroredStrategy`
over the cluster that `TF_CONFIG` describes (TensorFlow's multi-worker Keras
guide). Every worker runs the same `keras-geo train` command; they train in
lock step on their shard of each global batch. The chief (task `chief`, or
`worker` 0 when the cluster has no chief) owns the run directory; any other
worker writes only into `RUN_DIR/.worker-<type>-<index>/`, its private copy
of the run's state (history, checkpoints, backups), which lets it resume in
step with the chief and which it removes when the run is done.

Fault tolerance is `keras.callbacks.BackupAndRestore`'s: when a worker dies,
the others fail (a collective times out); restarting every failed process
with the same `TF_CONFIG` resumes the cluster after the last finished epoch.

Known Keras 3 breakage is worked around by
`keras_geo.compat.keras_multiworker.keras_multiworker_fix()`.
"""

import contextlib
import json
import os
import pathlib
import shutil

import numpy as np
import tensorflow as tf

from keras_geo import pipeline
from keras_geo.errors import UserError

# A collective waiting longer than this for a dead worker fails the step.
COLLECTIVE_TIMEOUT_S = 120
BROADCAST_CHUNK = 1 << 22  # floats per all-reduce when sharing the feature cache


def make_strategy(name):
    """Returns the `tf.distribute` strategy named by `Runtime.strategy`.

    `"default"`: the default strategy (no distribution). `"mirrored"`
    replicates over every local GPU, or, with none, over every logical CPU
    device (one replica on a plain CPU machine). `"multiworker"`:
    `MultiWorkerMirroredStrategy` over the `TF_CONFIG` cluster
    (`multiworker_strategy`).
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "multiworker":
        return multiworker_strategy()
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([device.name for device in devices])


def tf_config():
    """Returns the parsed `TF_CONFIG` (`{}` when unset)."""
    text = os.environ.get("TF_CONFIG", "")
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(f"TF_CONFIG is not valid JSON ({error}).") from None
    if not isinstance(value, dict) or "cluster" not in value or "task" not in value:
        raise UserError(
            'TF_CONFIG must be {"cluster": {"worker": ["host:port", ...]}, '
            '"task": {"type": "worker", "index": N}}.'
        )
    return value


def task():
    """Returns `(task type, index)` of this process (`("worker", 0)` alone)."""
    value = tf_config()
    if not value:
        return "worker", 0
    return value["task"]["type"], int(value["task"]["index"])


def is_chief():
    """True for the cluster's chief: task `chief`, or worker 0 without one."""
    value = tf_config()
    if not value:
        return True
    kind, index = task()
    if "chief" in value["cluster"]:
        return kind == "chief"
    return kind == "worker" and index == 0


def multiworker_strategy():
    """`MultiWorkerMirroredStrategy` over the `TF_CONFIG` cluster.

    Create it before any other TensorFlow op of the process (the collective
    runtime is configured at start-up).
    """
    if not tf_config():
        raise UserError(
            "--strategy multiworker needs TF_CONFIG describing the cluster, e.g. "
            'TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}}\' on the first machine.'
        )
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=COLLECTIVE_TIMEOUT_S)
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def is_multiworker(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def work_dir(run_dir):
    """Where this process writes: `run_dir` for the chief, else its temp folder."""
    run_dir = pathlib.Path(run_dir)
    if is_chief():
        return run_dir
    kind, index = task()
    return run_dir / f".worker-{kind}-{index}"


def remove_work_dir(run_dir):
    """Removes a non-chief worker's temp folder (no-op on the chief).

    The run directory itself goes too if that leaves it empty (a worker on
    a machine that does not share the chief's file system).
    """
    folder = work_dir(run_dir)
    if folder != pathlib.Path(run_dir):
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            pathlib.Path(run_dir).rmdir()


@contextlib.contextmanager
def peer_failure_as_user_error():
    """Turns "a worker of the cluster died" into a one-line `UserError`.

    A collective waiting on a dead worker fails with `UnavailableError`
    (heartbeats stopped) or `DeadlineExceededError` (COLLECTIVE_TIMEOUT_S).
    """
    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as error:
        reason = " ".join(str(error.message).split("\n")[0].split())[:200]
        raise UserError(
            f"a worker of the TF_CONFIG cluster failed ({reason}); restart every stopped "
            "worker with the same command and TF_CONFIG: training resumes after the last "
            "finished epoch."
        ) from None


def shard_by_element(ds):
    """Lets the strategy shard `ds` by element (every worker reads all files).

    TFDS writes few files per split, often fewer than workers, so sharding
    by file (tf.data's default) would leave workers without data.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


def serve_dispatcher(port, *, work_dir=None):
    """Runs a tf.data service dispatcher on `port` until killed.

    Args:
        port: TCP port (0: any free one; the address is printed).
        work_dir: where the dispatcher journals its state so a restarted
            one picks up its jobs (None: in memory only).
    """
    config = tf.data.experimental.service.DispatcherConfig(
        port=port, work_dir=work_dir, fault_tolerant_mode=work_dir is not None
    )
    server = tf.data.experimental.service.DispatchServer(config)
    print(f"tf.data service dispatcher at {server.target}", flush=True)
    server.join()


def serve_worker(dispatcher, port):
    """Runs a tf.data service worker of `dispatcher` ("host:port") until killed.

    Raises:
        UserError: no dispatcher answers at `dispatcher` within
            `pipeline.DISPATCHER_WAIT_S` seconds (TensorFlow's worker would
            retry silently for ever).
    """
    print(
        f"tf.data service worker: waiting for the dispatcher at {dispatcher} "
        f"(up to {pipeline.DISPATCHER_WAIT_S} s)",
        flush=True,
    )
    pipeline.wait_for_dispatcher(dispatcher)
    dispatcher = dispatcher.split("://", 1)[-1]
    config = tf.data.experimental.service.WorkerConfig(dispatcher_address=dispatcher, port=port)
    server = tf.data.experimental.service.WorkerServer(config)
    print(f"tf.data service worker of {dispatcher} on port {port}", flush=True)
    server.join()


def broadcast_from_chief(strategy, arrays):
    """Gives every worker the chief's numpy arrays (others pass None).

    Cross-worker all-reduce (SUM) where the others contribute zeros: exact
    for float32 (x + 0 == x) and for integers below 2**24 sent as float32.

    Args:
        strategy: a `MultiWorkerMirroredStrategy`.
        arrays: on the chief, a list of numpy arrays; elsewhere None.

    Returns:
        The chief's arrays (dtypes and shapes kept), on every worker.
    """

    def all_sum(values):
        return strategy.reduce("SUM", tf.constant(values, tf.float32), axis=None).numpy()

    chief = arrays is not None
    count = int(all_sum([len(arrays) if chief else 0])[0])
    shapes = []
    for index in range(count):
        meta = [arrays[index].ndim, *arrays[index].shape] if chief else []
        rank = int(all_sum([meta[0] if chief else 0])[0])
        shape = all_sum(meta[1:] if chief else [0] * rank).astype(np.int64)
        shapes.append(tuple(int(n) for n in shape))
    out = []
    for index, shape in enumerate(shapes):
        flat = np.asarray(arrays[index], np.float32).ravel() if chief else None
        size = int(np.prod(shape))
        pieces = [
            all_sum(
                flat[i : i + BROADCAST_CHUNK] if chief else np.zeros(min(BROADCAST_CHUNK, size - i))
            )
            for i in range(0, size, BROADCAST_CHUNK)
        ]
        value = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        dtype = arrays[index].dtype if chief else None
        out.append(value.reshape(shape) if dtype is None else value.reshape(shape).astype(dtype))
    return out
