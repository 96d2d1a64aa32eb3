"""Helpers for tests that start TF_CONFIG clusters of local processes.

Not a test module: `tests/test_distribute.py` imports it, and runs
`python tests/multiworker_helpers.py toy OUT.json` as each worker of the
Keras shim check (keras-team/keras#20585).
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys


def free_ports(count):
    """Ports free on 127.0.0.1 right now (picked by the OS)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def tf_configs(count):
    """One TF_CONFIG JSON string per worker of a loopback cluster."""
    workers = [f"127.0.0.1:{port}" for port in free_ports(count)]
    return [
        json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}})
        for i in range(count)
    ]


def worker_env(tf_config):
    env = dict(os.environ, TF_CONFIG=tf_config, TF_CPP_MIN_LOG_LEVEL="2")
    env.setdefault("CUDA_VISIBLE_DEVICES", "")
    return env


@contextlib.contextmanager
def processes(commands_and_envs, log_dir):
    """Starts one process per (command, env); kills all of them on exit."""
    started = []
    try:
        for index, (command, env) in enumerate(commands_and_envs):
            log = open(os.path.join(log_dir, f"worker{index}.log"), "a")
            started.append(
                subprocess.Popen(
                    command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            )
        yield started
    finally:
        for process in started:
            stop(process)


def stop(process):
    """Kills `process` and its group if still running, and reaps it."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def logs(log_dir):
    """Every worker log of `log_dir`, for assertion messages."""
    text = []
    for name in sorted(os.listdir(log_dir)):
        if name.endswith(".log"):
            with open(os.path.join(log_dir, name)) as f:
                text.append(f"--- {name}\n{f.read()[-3000:]}")
    return "\n".join(text)


def _toy(out_path):
    """One worker of the shim check: fits a tiny model three ways."""
    from keras_geo import distribute
    from keras_geo.compat import keras_multiworker

    strategy = distribute.multiworker_strategy()
    import keras
    import numpy as np
    import tensorflow as tf

    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = (x.sum(axis=1) > 0).astype("int64")
    results = {"replicas": strategy.num_replicas_in_sync}
    for parts in ((), ("build",), ("build", "logs")):
        keras.utils.set_random_seed(1)
        with strategy.scope():
            model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
            model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
        key = "+".join(parts) or "none"
        try:
            with keras_multiworker.keras_multiworker_fix(parts):
                history = model.fit(ds, epochs=2, verbose=0)
            results[key] = {
                "loss": [float(v) for v in history.history["loss"]],
                "weights": float(sum(np.abs(w).sum() for w in model.get_weights())),
            }
        except Exception as error:  # noqa: BLE001 (the test reads the message)
            results[key] = {"error": f"{type(error).__name__}: {error}"[:500]}
    with open(out_path, "w") as f:
        json.dump(results, f)


def _train_and_die(run_dir, data_dir, marker, finetune_steps):
    """A worker of the cluster tests: 2 cached frozen epochs, then
    `finetune_steps` steps of one fine-tuning epoch (none if 0).

    Worker 1 SIGKILLs itself right after its first epoch, once (`marker`
    records that it did), as a machine failure would.
    """
    import keras
    from train_helpers import tiny_config, tiny_runtime

    from keras_geo import distribute, training

    class DieOnce(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if distribute.task() == ("worker", 1) and not os.path.exists(marker):
                open(marker, "w").close()
                os.kill(os.getpid(), signal.SIGKILL)

    config = tiny_config(epochs_frozen=2, epochs_finetune=1 if int(finetune_steps) else 0)
    runtime = tiny_runtime(data_dir, strategy="multiworker")
    steps = int(finetune_steps) or None
    kwargs = dict(runtime=runtime, callbacks=[DieOnce()], verbose=0, steps_per_epoch=steps)
    training.train(config, run_dir, **kwargs)


if __name__ == "__main__":
    if sys.argv[1] == "toy":
        _toy(sys.argv[2])
    elif sys.argv[1] == "train":
        _train_and_die(*sys.argv[2:6])
