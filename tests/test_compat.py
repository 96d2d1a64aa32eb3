"""`keras_geo.compat`: each upstream override still fits upstream, and is still needed.

A test here fails when a library release changes what an override relies on
(then fix the override, or drop it if upstream fixed the issue), which is
why setup.cfg pins each library to the range these tests passed on.
"""

import errno
import inspect

import keras
import keras_tuner
import pytest

from keras_geo import tuning
from keras_geo.compat import keras_callbacks
from keras_geo.compat import keras_tuner as compat_kt
from keras_geo.compat import tfds as compat_tfds

# --- KerasTuner -------------------------------------------------------------------


def test_keras_tuner_still_builds_a_model_to_populate_the_space():
    """`DeclaredSpace` overrides a private method that still exists and still builds."""
    base = keras_tuner.Tuner
    assert list(inspect.signature(base._populate_initial_space).parameters) == ["self"]
    assert "_activate_all_conditions" in inspect.getsource(base._populate_initial_space)
    assert (
        tuning.GeoTuner._populate_initial_space is compat_kt.DeclaredSpace._populate_initial_space
    )
    # Upstream's run_trial still checkpoints every trial, which GeoTuner's does not;
    # GeoTuner's runs the public path alone, under the strategy KerasTuner keeps.
    assert "SaveBestEpoch" in inspect.getsource(base.run_trial)
    assert "distribution_strategy" in inspect.signature(base).parameters
    assert "._" not in inspect.getsource(tuning.GeoTuner.run_trial)


def test_the_consecutive_failures_stop_is_a_runtime_error_whose_text_names_the_limit(tmp_path):
    class Space(keras_tuner.HyperModel):
        def declare_hyperparameters(self, hp):
            hp.Int("x", 0, 3)

        def build(self, hp):
            raise AssertionError("DeclaredSpace builds no model for the space")

    class Failing(compat_kt.DeclaredSpace, keras_tuner.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            raise keras_tuner.errors.FailedTrialError("always")

    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective=keras_tuner.Objective("score", "max"),
        max_trials=3,
        max_consecutive_failed_trials=2,
    )
    tuner = Failing(oracle, Space(), directory=str(tmp_path), project_name="p")
    assert "x" in oracle.get_space().values
    with pytest.raises(RuntimeError) as stop:
        tuner.search(verbose=0)
    assert compat_kt.consecutive_failures_limit(stop.value) == 2
    assert compat_kt.consecutive_failures_limit(RuntimeError("something else")) is None


# --- Keras callbacks ----------------------------------------------------------------


def test_the_private_methods_the_atomic_callbacks_override_are_still_there(tmp_path):
    checkpoint = keras.callbacks.ModelCheckpoint
    assert list(inspect.signature(checkpoint._should_save_model).parameters) == [
        "self", "epoch", "batch", "logs", "filepath",
    ]  # fmt: skip
    assert list(inspect.signature(checkpoint._save_model).parameters) == [
        "self", "epoch", "batch", "logs",
    ]  # fmt: skip
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    assert list(inspect.signature(type(backup)._save_model).parameters) == ["self"]
    assert backup._weights_path and backup._training_metadata_path
    ours = keras_callbacks.AtomicBackupAndRestore(str(tmp_path / "backup"))
    assert ours._weights_path == backup._weights_path


# --- TensorFlow Datasets -----------------------------------------------------------


def test_a_full_disk_is_told_by_its_errno_or_its_text():
    def raised(error, cause):
        try:
            try:
                raise cause
            except Exception:
                raise error from cause
        except Exception as outer:
            return outer

    full = raised(RuntimeError("write failed"), OSError(errno.ENOSPC, "disk"))
    assert compat_tfds.is_disk_full(full)
    assert compat_tfds.is_disk_full(RuntimeError("... No space left on device ..."))
    assert not compat_tfds.is_disk_full(raised(RuntimeError("x"), OSError(errno.EACCES, "no")))


def test_the_tfds_hook_the_builder_implements_still_takes_what_it_passes_on():
    """`tfds_geoguessr`'s `Builder._download_and_prepare` wraps TFDS' own (the hook
    TFDS documents for subclasses) and passes `dl_manager` and `download_config`."""
    import tensorflow_datasets as tfds

    from tfds_geoguessr.geoguessr.geoguessr_dataset_builder import Builder

    upstream = inspect.signature(tfds.core.GeneratorBasedBuilder._download_and_prepare)
    assert list(upstream.parameters) == ["self", "dl_manager", "download_config"]
    assert "_download_and_prepare" in vars(Builder)
    assert issubclass(Builder, tfds.core.GeneratorBasedBuilder)


def test_tuning_report_reads_trials_with_keras_tuners_own_loader(tmp_path):
    """The report reads `trial.json` through `keras_tuner`'s public `Trial.load`."""
    from keras_tuner.engine import trial as kt_trial

    from keras_geo import tuning_report

    hp = keras_tuner.HyperParameters()
    hp.Fixed("batch_size", 16)
    trial = kt_trial.Trial(hp, trial_id="02", status=kt_trial.TrialStatus.COMPLETED)
    trial.metrics.register("val_accuracy", direction="max")
    trial.metrics.update("val_accuracy", 0.25, step=0)
    trial.metrics.update("val_accuracy", 0.5, step=1)
    trial.best_step = 1
    folder = tmp_path / "search" / "trial_02"
    folder.mkdir(parents=True)
    trial.save(str(folder / "trial.json"))
    [row] = tuning_report.load_trials(tmp_path)
    assert (row["trial"], row["status"], row["batch_size"]) == (3, "COMPLETED", 16)
    assert row["val_accuracy"] == 0.5 and row["best_epoch"] == 2


def test_tfds_still_imports_importlib_resources_without_declaring_it_for_this_python():
    """setup.cfg declares `importlib_resources` because TFDS' builder module imports it
    but TFDS requires it only on Python < 3.9. When TFDS declares it for every Python
    (or stops importing it), the line in setup.cfg can go."""
    import importlib.metadata

    from tensorflow_datasets.core import dataset_builder

    requirements = importlib.metadata.requires("tensorflow-datasets")
    declared = [r for r in requirements if r.startswith("importlib_resources")]
    assert all("python_version < " in r for r in declared)
    # Imported lazily (`epy.lazy_imports`), used for out-of-tree builders' paths.
    assert "importlib_resources.abc.Traversable" in inspect.getsource(dataset_builder)
