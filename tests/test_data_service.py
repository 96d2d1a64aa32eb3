"""`--data-service`: a dispatcher and two tf.data service workers feed training."""

import collections
import socket
import sys
import time

import numpy as np
import pytest

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
import multiworker_helpers as helpers  # noqa: E402

START_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """`keras-geo data-service` dispatcher + 2 workers as processes; yields the address."""
    tmp_path = tmp_path_factory.mktemp("service")
    ports = helpers.free_ports(3)
    cli = [sys.executable, "-m", "keras_geo.cli.main", "data-service"]
    dispatcher = f"127.0.0.1:{ports[0]}"
    commands = [cli + ["dispatcher", "--port", str(ports[0])]]
    commands += [cli + ["worker", "--port", str(p), "--dispatcher", dispatcher] for p in ports[1:]]
    env = helpers.worker_env("")
    with helpers.processes([(c, env) for c in commands], tmp_path) as started:
        for port in ports:
            _wait_for_port(port, started, tmp_path)
        yield f"grpc://{dispatcher}"


def _wait_for_port(port, started, log_dir):
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in started):
            pytest.fail("a service process exited\n" + helpers.logs(log_dir))
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    pytest.fail(f"port {port} not listening\n" + helpers.logs(log_dir))


def _train_split(data_dir):
    from keras_geo import datasets

    return datasets.load_split("synthetic", "train", data_dir=data_dir, for_service=True)


def _seen_in_one_fit_epoch(ds):
    """(label, pixel sum) of every example a Keras `fit` epoch trains on."""
    import keras

    seen = []

    class Recorder(keras.Model):
        def train_step(self, data):
            images, labels = data
            sums = np.asarray(images).reshape(len(images), -1).sum(axis=1)
            seen.extend(zip(np.asarray(labels).tolist(), np.round(sums, 1).tolist(), strict=True))
            return super().train_step(data)

    inputs = keras.Input((32, 32, 3))
    model = Recorder(inputs, keras.layers.Dense(20)(keras.layers.GlobalAveragePooling2D()(inputs)))
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.run_eagerly = True
    model.fit(ds, epochs=1, verbose=0)
    return collections.Counter(seen)


def test_service_feeds_a_training_epoch_with_the_local_examples(service, synthetic_data_dir):
    from keras_geo import pipeline

    local = pipeline.eval_dataset(_train_split(synthetic_data_dir), image_size=32, batch_size=32)
    served = pipeline.through_service(local, service)
    expected = _seen_in_one_fit_epoch(local)
    assert sum(expected.values()) == 880
    assert _seen_in_one_fit_epoch(served) == expected


def test_augmented_stream_gives_each_example_once_per_epoch(service, synthetic_data_dir):
    from keras_geo import pipeline

    split = _train_split(synthetic_data_dir)
    expected = collections.Counter(int(label) for _, label in split.as_numpy_iterator())
    stream = pipeline.train_dataset(split, image_size=32, batch_size=64, seed=0)
    served = pipeline.through_service(stream, service)
    for _ in range(2):  # every epoch, not only the first
        labels = np.concatenate([labels for _, labels in served.as_numpy_iterator()])
        assert collections.Counter(labels.tolist()) == expected


def test_data_service_is_not_part_of_the_run_identity(tmp_path):
    from keras_geo import runs
    from keras_geo.config import Runtime, TrainConfig, field_names

    assert "data_service" in field_names(Runtime) and "data_service" not in field_names(TrainConfig)
    served = Runtime(data_service="grpc://host:5050")
    runs.prepare_run_dir(TrainConfig(), tmp_path, runtime=served)
    assert runs.stored_run_config(tmp_path) == (TrainConfig(), served)


def test_data_service_with_multiworker_is_refused():
    from keras_geo.config import Runtime

    with pytest.raises(ValueError, match="data_service"):
        Runtime(data_service="grpc://h:1", strategy="multiworker")


@pytest.mark.slow
def test_train_fine_tunes_through_the_service(service, tiny_config, tiny_runtime, tmp_path):
    """`keras-geo train --data-service URL`: the image epochs come from the service.

    Slow (ResNet50 steps, about 1-2 minutes on 2 shared cores); the fast test
    above shows a Keras `fit` epoch through the service sees the local examples.
    """
    from keras_geo import runs, training

    config = tiny_config(epochs_frozen=0, batch_size=32)
    served = tiny_runtime.replace(data_service=service)
    training.train(config, tmp_path / "run", runtime=served, verbose=0, steps_per_epoch=2)
    assert [row["epoch"] for row in runs.read_history(tmp_path / "run", "finetune")] == [0]
    # The same run, local input.
    assert runs.prepare_run_dir(config, tmp_path / "run", runtime=tiny_runtime) == tmp_path / "run"


def test_tuning_trials_read_their_images_through_the_service(
    service, tiny_config, tiny_runtime, tmp_path, monkeypatch
):
    """`keras-geo tune --data-service URL`: a trial's image epochs come from the service."""
    from keras_geo import pipeline, tuning

    served = []
    through_service = pipeline.through_service

    def spy(ds, address, **kwargs):
        served.append(address)
        return through_service(ds, address, **kwargs)

    monkeypatch.setattr(pipeline, "through_service", spy)
    config = tiny_config(cache_features=False)
    best = tuning.search(
        config,
        tmp_path / "run",
        runtime=tiny_runtime.replace(data_service=service),
        phase="frozen",
        max_trials=1,
        epochs=1,
        max_examples=64,
        verbose=0,
    )
    assert best is not None  # The trial completed (`search` raises if none did).
    assert served == [service]


def test_an_address_with_no_dispatcher_is_a_one_line_error():
    """The service client would wait for ever; `through_service` fails at once instead."""
    import tensorflow as tf

    from keras_geo import pipeline
    from keras_geo.errors import UserError

    (port,) = helpers.free_ports(1)
    with pytest.raises(UserError, match=rf"grpc://127.0.0.1:{port}: no dispatcher answers"):
        pipeline.through_service(tf.data.Dataset.range(3), f"127.0.0.1:{port}")


def test_tune_stops_at_once_without_a_dispatcher(tiny_config, tiny_runtime, tmp_path):
    """The first trial's one-line error ends the search: every trial would meet it."""
    from keras_geo import tuning
    from keras_geo.errors import UserError

    (port,) = helpers.free_ports(1)
    config = tiny_config(cache_features=False)
    runtime = tiny_runtime.replace(data_service=f"grpc://127.0.0.1:{port}")
    with pytest.raises(UserError, match="no dispatcher answers"):
        tuning.search(
            config, tmp_path / "run", runtime=runtime, phase="frozen", max_trials=3, epochs=1
        )
