"""Shared fixtures: a session-wide TFDS data dir holding `geoguessr/synthetic`."""

import pytest


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory):
    """A TFDS data_dir (str) in which `geoguessr/synthetic` is built once."""
    from keras_geo import datasets

    data_dir = tmp_path_factory.mktemp("tfds_data")
    datasets.ensure_synthetic(str(data_dir))
    return str(data_dir)


@pytest.fixture(scope="session")
def tiny_config(synthetic_data_dir):
    """Makes the `TrainConfig` of a fast run: synthetic data, 32 px, random weights.

    `tiny_config(**overrides)`; defaults: 1 frozen and 1 fine-tuning epoch, batch 64.
    """
    from keras_geo.config import TrainConfig

    base = TrainConfig(
        dataset="geoguessr/synthetic",
        data_dir=synthetic_data_dir,
        weights="none",
        image_size=32,
        epochs_frozen=1,
        epochs_finetune=1,
        batch_size=64,
    )
    return lambda **overrides: base.replace(**overrides)
