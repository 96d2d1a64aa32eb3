"""Shared fixtures: a session-wide TFDS data dir holding `geoguessr/synthetic`."""

import pytest


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory):
    """A TFDS data_dir (str) in which `geoguessr/synthetic` is built once."""
    from keras_geo import datasets

    data_dir = tmp_path_factory.mktemp("tfds_data")
    datasets.ensure_synthetic(str(data_dir))
    return str(data_dir)


@pytest.fixture
def tmpfs(tmp_path):
    """Mounts small tmpfs file systems the test owns; unmounted after it.

    Yields `mount(size="4m") -> path`; `read_only(path)` remounts one
    read-only. Skips (with the reason) unless running as root.
    """
    import os
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs (full or read-only disk) needs root")
    mounts = []

    def mount(size="4m"):
        path = tmp_path / f"tmpfs{len(mounts)}"
        path.mkdir()
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True
        )
        mounts.append(path)
        return path

    mount.read_only = lambda path: subprocess.run(
        ["mount", "-o", "remount,ro", str(path)], check=True
    )
    yield mount
    for path in reversed(mounts):
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture(scope="session")
def tiny_config():
    """Makes the `TrainConfig` of a fast run: synthetic data, 32 px, random weights.

    `tiny_config(**overrides)`; defaults: 1 frozen and 1 fine-tuning epoch, batch 64.
    """
    import train_helpers

    return train_helpers.tiny_config


@pytest.fixture(scope="session")
def tiny_runtime(synthetic_data_dir):
    """The `Runtime` of a fast run: `geoguessr/synthetic` in `synthetic_data_dir`."""
    import train_helpers

    return train_helpers.tiny_runtime(synthetic_data_dir)
