"""Shared by the training tests: the tiny run's config and argv, eager compiling, an epoch log.

Not a test module: `conftest.py` (the `tiny_config` fixture), the training,
checkpoint, model and CLI tests import it, and so does
`multiworker_helpers.py` in its worker processes.
"""

import keras

SYNTHETIC = "geoguessr/synthetic"


def tiny_config(**overrides):
    """The `TrainConfig` of a fast run: synthetic data, 32 px, random weights.

    Defaults: 1 frozen and 1 fine-tuning epoch, batch 64; `overrides` replace fields.
    """
    from keras_geo.config import TrainConfig

    tiny = dict(weights="none", image_size=32, epochs_frozen=1, epochs_finetune=1, batch_size=64)
    return TrainConfig(dataset=SYNTHETIC, **tiny).replace(**overrides)


def tiny_runtime(data_dir, **overrides):
    """The `Runtime` of a tiny run: the built synthetic data in `data_dir`; `overrides`."""
    from keras_geo.config import Runtime

    return Runtime(data_dir=data_dir).replace(**overrides)


def synthetic_argv(command, data_dir, *flags):
    """`keras-geo COMMAND` argv on the built synthetic dataset, then `flags`."""
    return [command, "--dataset", SYNTHETIC, "--data-dir", str(data_dir), *flags]


def compile_eagerly(model, *, learning_rate=1e-2, weight_decay=1e-4, class_names=None):
    """`keras_geo.model.compile_model` with plain cross-entropy, run eagerly (fast on CPU)."""
    from keras_geo import model as geo_model

    geo_model.compile_model(
        model,
        loss=keras.losses.SparseCategoricalCrossentropy(),
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        class_names=class_names,
        jit_compile=False,
        run_eagerly=True,  # no tracing: faster on tiny CPU tests
    )


class EpochCounter(keras.callbacks.Callback):
    """Records the index of every epoch `fit` starts."""

    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def write_run(run_dir, model, class_names, image_size):
    """Writes the run directory `train` would leave for `model` (`image_size` px, no weights).

    Returns:
        `run_dir`, created (parents too) if missing.
    """
    from keras_geo import runs
    from keras_geo.config import TrainConfig

    run_dir.mkdir(parents=True, exist_ok=True)
    config = TrainConfig(image_size=image_size, weights="none")
    config.to_json(run_dir / runs.CONFIG_FILE)
    runs.write_class_names(run_dir, class_names)
    runs.save_model(model, run_dir / runs.MODEL_FILE, class_names, config)
    return run_dir
