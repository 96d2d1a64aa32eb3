"""Two-phase training into a run directory: outputs, resume, refusal, strategy.

Tiny runs: synthetic data, 32 px, random weights, 1-2 epochs of 2 batches
(`steps_per_epoch`) on the image path; the cached frozen phase runs whole.
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import pytest
from train_helpers import EpochCounter

from keras_geo import phase as phase_lib
from keras_geo import runs, training
from keras_geo.config import TrainConfig
from keras_geo.errors import UserError

STEPS = 2  # batches per image-path epoch


class Interrupt(keras.callbacks.Callback):
    """Simulates a crash right after the first epoch was backed up."""

    def on_epoch_end(self, epoch, logs=None):
        raise RuntimeError("simulated interruption")


@pytest.fixture(scope="module")
def feature_cache(tmp_path_factory):
    """One feature cache for the module: same seed, same random backbone, same key."""
    return tmp_path_factory.mktemp("features")


@pytest.fixture(scope="module")
def trained(tiny_config, tiny_runtime, feature_cache, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    config = tiny_config()
    counter = EpochCounter()
    model = training.train(
        config,
        run_dir,
        runtime=tiny_runtime,
        callbacks=[counter],
        verbose=0,
        steps_per_epoch=STEPS,
        feature_cache_dir=feature_cache,
    )
    return run_dir, config, model, counter


def test_both_phases_write_every_output(trained):
    run_dir, config, model, counter = trained
    assert counter.epochs == [0, 0]  # one epoch per phase
    assert runs.stored_config(run_dir) == config
    names = json.loads((run_dir / "class_names.json").read_text())
    assert len(names) == 20 and model.output_shape == (None, 20)
    for phase in training.PHASES:
        history = runs.read_history(run_dir, phase)
        assert [row["epoch"] for row in history] == [0]
        for key in ("accuracy", "loss", "val_accuracy", "val_loss", "val_mean_km"):
            assert key in history[0], history[0]
        assert runs.checkpoint_path(run_dir, phase).is_file()
        assert not runs.backup_dir(run_dir, phase).exists()
    assert set(runs.phases_done(run_dir)) == {"frozen", "finetune"}
    assert runs.read_model_record(run_dir)["phase"] in training.PHASES
    metrics = json.loads((run_dir / "metrics" / "test.json").read_text())
    assert metrics["num_examples"] > 0 and 0 <= metrics["accuracy"] <= 1
    for name in (
        "training_curves.png",
        "confusion_matrix_test.png",
        "per_country_accuracy_test.png",
    ):
        assert (run_dir / "plots" / name).is_file()


def test_rerun_retrains_no_epoch(trained, tiny_runtime):
    run_dir, config, _, _ = trained
    before = {p: runs.history_path(run_dir, p).read_text() for p in training.PHASES}
    counter = EpochCounter()
    kwargs = dict(runtime=tiny_runtime, verbose=0, steps_per_epoch=STEPS)
    training.train(config, run_dir, callbacks=[counter], **kwargs)
    assert counter.epochs == []
    after = {p: runs.history_path(run_dir, p).read_text() for p in training.PHASES}
    assert after == before


def test_run_dir_of_another_config_is_refused(trained, tiny_runtime):
    run_dir, config, _, _ = trained
    before = (run_dir / "config.json").read_text()
    with pytest.raises(UserError, match="epochs_finetune: 1 -> 2"):
        training.train(config.replace(epochs_finetune=2), run_dir, runtime=tiny_runtime)
    assert (run_dir / "config.json").read_text() == before
    # The runtime is not part of what is trained: moving data is fine.
    elsewhere = tiny_runtime.replace(data_dir="/elsewhere", strategy="mirrored")
    runs.prepare_run_dir(config, run_dir, runtime=elsewhere)
    assert runs.stored_run_config(run_dir) == (config, elsewhere)
    runs.prepare_run_dir(config, run_dir, runtime=tiny_runtime)


def test_a_run_whose_config_json_is_of_before_the_runtime_split_resumes(
    trained, tiny_runtime, capsys
):
    """`config.json` was one flat object of every field: `train --run-dir` alone resumes it."""
    from keras_geo.cli import main as cli_main

    run_dir, config, _, _ = trained
    before = {p: runs.history_path(run_dir, p).read_text() for p in training.PHASES}
    flat = {**config.to_dict(), **tiny_runtime.to_dict()}  # Its data_dir among the fields.
    (run_dir / runs.CONFIG_FILE).write_text(json.dumps(flat))
    assert cli_main.main(["train", "--run-dir", str(run_dir)]) == 0  # Trains nothing again.
    assert "accuracy" in capsys.readouterr().out
    after = {p: runs.history_path(run_dir, p).read_text() for p in training.PHASES}
    assert after == before
    assert runs.stored_run_config(run_dir) == (config, tiny_runtime)
    assert set(json.loads((run_dir / runs.CONFIG_FILE).read_text())) == {"recipe", "runtime"}


def test_load_model_from_run_dir_and_bare_keras_file(trained, tmp_path):
    run_dir, config, model, _ = trained
    loaded, names, loaded_config = runs.load_model(run_dir)
    assert names == json.loads((run_dir / "class_names.json").read_text())
    assert loaded_config == config
    assert [w.shape for w in loaded.weights] == [w.shape for w in model.weights]
    bare = tmp_path / "copy.keras"  # elsewhere, no class_names.json beside it
    bare.write_bytes((run_dir / "model.keras").read_bytes())
    _, bare_names, bare_config = runs.load_model(bare)
    assert bare_names == names and bare_config == config


def test_load_model_bare_keras_without_metadata(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="head")])
    model.save(tmp_path / "plain.keras")
    with pytest.raises(UserError, match="class_names.json"):
        runs.load_model(tmp_path / "plain.keras")
    runs.write_class_names(tmp_path, ["France", "Japan"])
    _, names, config = runs.load_model(tmp_path / "plain.keras")
    assert names == ["France", "Japan"] and config is None
    with pytest.raises(UserError, match="No model"):
        runs.load_model(tmp_path / "missing.keras")


def test_interrupted_phase_resumes_at_the_next_epoch(
    tiny_config, tiny_runtime, feature_cache, trained, tmp_path
):
    # The cached frozen phase: BackupAndRestore backs up the head-only model.
    config = tiny_config(epochs_frozen=2, epochs_finetune=0)
    kwargs = dict(runtime=tiny_runtime, verbose=0, feature_cache_dir=feature_cache)
    cached = sorted(feature_cache.iterdir())
    with pytest.raises(RuntimeError, match="simulated"):
        training.train(config, tmp_path, callbacks=[Interrupt()], **kwargs)
    assert runs.phases_done(tmp_path) == {}
    assert runs.backup_dir(tmp_path, "frozen").is_dir()
    assert [row["epoch"] for row in runs.read_history(tmp_path, "frozen")] == [0]
    counter = EpochCounter()
    training.train(config, tmp_path, callbacks=[counter], **kwargs)
    assert counter.epochs == [1]  # epoch 0 is not redone
    history = runs.read_history(tmp_path, "frozen")
    assert [row["epoch"] for row in history] == [0, 1]
    assert set(runs.phases_done(tmp_path)) == {"frozen", "finetune"}
    assert runs.phases_done(tmp_path)["frozen"]["epochs"] == 2
    assert not runs.backup_dir(tmp_path, "frozen").exists()
    assert sorted(feature_cache.iterdir()) == cached  # features were reused


def test_build_loss_follows_the_config():
    from keras_geo.losses import HaversineCrossEntropy

    names = ["France", "Japan"]
    config = TrainConfig(alpha=1.5)
    loss = phase_lib.build_loss(config, names)
    assert isinstance(loss, HaversineCrossEntropy) and loss.alpha == 1.5
    plain = phase_lib.build_loss(config.replace(loss="crossentropy"), names)
    assert isinstance(plain, keras.losses.SparseCategoricalCrossentropy)
    smoothed = phase_lib.build_loss(config.replace(loss="crossentropy", tau_km=70.0), names)
    assert isinstance(smoothed, HaversineCrossEntropy)
    assert smoothed.alpha == 0.0 and smoothed.tau_km == 70.0


_MIRRORED_SCRIPT = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)
import keras
from keras_geo import training
from keras_geo.config import Runtime, TrainConfig

config = TrainConfig(**json.loads(sys.argv[1]))
runtime = Runtime(**json.loads(sys.argv[3]))
seen = {}

class Probe(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        strategy = tf.distribute.get_strategy()
        seen["replicas"] = strategy.num_replicas_in_sync
        seen["policy"] = self.model.dtype_policy.name
        seen["optimizer"] = type(self.model.optimizer).__name__
        seen["backbone_policy"] = self.model.get_layer("backbone").dtype_policy.name

model = training.train(
    config, sys.argv[2], runtime=runtime, callbacks=[Probe()], verbose=0, steps_per_epoch=1
)
seen["output_dtype"] = str(model.output.dtype)
seen["policy_after"] = keras.mixed_precision.global_policy().name
print("RESULT " + json.dumps(seen))
"""


def test_mirrored_strategy_and_mixed_precision_on_two_logical_cpus(
    tiny_config, tiny_runtime, tmp_path
):
    config = tiny_config(epochs_finetune=0, cache_features=False)
    runtime = tiny_runtime.replace(strategy="mirrored", mixed_precision=True)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(_MIRRORED_SCRIPT),
            json.dumps(config.to_dict()),
            str(tmp_path / "run"),
            json.dumps(runtime.to_dict()),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = [ln for ln in result.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    seen = json.loads(line[len("RESULT ") :])
    assert seen["replicas"] == 2
    assert seen["policy"] == "mixed_float16"
    assert seen["optimizer"] == "LossScaleOptimizer"
    assert seen["backbone_policy"] == "mixed_float16"
    assert seen["output_dtype"] == "float32"
    assert seen["policy_after"] == "float32"
    assert (tmp_path / "run" / "metrics" / "test.json").is_file()


def test_the_phase_with_the_best_val_accuracy_is_kept(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="head")])
    (tmp_path / "checkpoints").mkdir()
    model.layers[0].kernel.assign([[1.0], [1.0]])
    model.save_weights(tmp_path / "checkpoints" / "frozen.weights.h5")
    model.layers[0].kernel.assign([[2.0], [2.0]])  # finetune: worse on validation
    model.save_weights(tmp_path / "checkpoints" / "finetune.weights.h5")
    for phase, accuracy in (("frozen", 0.4), ("finetune", 0.3)):
        weights = f"checkpoints/{phase}.weights.h5"
        runs.mark_phase_done(tmp_path, phase, {"best_val_accuracy": accuracy, "weights": weights})
    training._keep_best_phase(model, tmp_path)
    assert model.layers[0].kernel.numpy().tolist() == [[1.0], [1.0]]
    assert runs.read_model_record(tmp_path) == {"phase": "frozen", "val_accuracy": 0.4}
    runs.mark_phase_done(tmp_path, "finetune", {"best_val_accuracy": 0.4, "weights": weights})
    training._keep_best_phase(model, tmp_path)  # a tie goes to the later phase
    assert runs.read_model_record(tmp_path)["phase"] == "finetune"


def test_progress_is_one_line_per_epoch_when_stdout_is_not_a_terminal(monkeypatch):
    import io

    from keras_geo.console import keras_verbose

    monkeypatch.setattr("sys.stdout", io.StringIO())
    assert keras_verbose() == 2 and keras_verbose(1) == 1

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stdout", Terminal())
    assert keras_verbose("auto") == 1
