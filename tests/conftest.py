"""Shared fixtures: a session-wide TFDS data dir holding `geoguessr/synthetic`."""

import pytest


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory):
    """A TFDS data_dir (str) in which `geoguessr/synthetic` is built once."""
    from keras_geo import datasets

    data_dir = tmp_path_factory.mktemp("tfds_data")
    datasets.ensure_synthetic(str(data_dir))
    return str(data_dir)
