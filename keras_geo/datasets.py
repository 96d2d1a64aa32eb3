"""Load and build the `geoguessr` TFDS dataset (package `tfds_geoguessr`).

`dataset` arguments accept a config name (`"top20"`) or a TFDS name
(`"geoguessr/top20"`, as in `TrainConfig.dataset`). `data_dir=None` means
TFDS' default (`~/tensorflow_datasets` or `$TFDS_DATA_DIR`).
"""

import contextlib
import io
import json
import os
import pathlib
import shutil
import uuid

import numpy as np
import tensorflow_datasets as tfds

from keras_geo import locks, paths
from keras_geo.compat import tfds as compat_tfds
from keras_geo.errors import StorageError, UserError
from tfds_geoguessr.geoguessr import layout, limits, parallel
from tfds_geoguessr.geoguessr.geoguessr_dataset_builder import Builder, BuildError, read_labels

DATASET_NAME = "geoguessr"
CONFIGS = ("top20", "all", "synthetic")
_INCOMPLETE = "incomplete.keras_geo."  # Temporary data dirs of builds in progress.


def config_of(dataset: str) -> str:
    """`"geoguessr/top20"` or `"top20"` -> `"top20"`; UserError if unknown."""
    name, _, config = dataset.rpartition("/")
    if name not in ("", DATASET_NAME) or config not in CONFIGS:
        raise UserError(
            f"unknown dataset {dataset!r}: use one of "
            + ", ".join(f"{DATASET_NAME}/{c}" for c in CONFIGS)
        )
    return config


def builder(dataset: str, data_dir=None):
    """The TFDS builder of `dataset` (not necessarily prepared)."""
    return Builder(config=config_of(dataset), data_dir=_str(data_dir), file_format="tfrecord")


def is_prepared(ds_builder):
    """`ds_builder.is_prepared()`, quietly (`keras_geo.compat.tfds.is_prepared`)."""
    return compat_tfds.is_prepared(ds_builder)


def build_command(dataset: str, data_dir=None) -> str:
    """The `keras-geo data build` command that prepares `dataset`."""
    command = f"keras-geo data build --dataset {DATASET_NAME}/{config_of(dataset)}"
    return command + (f" --data-dir {data_dir}" if data_dir else "")


def load_split(dataset: str, split: str, data_dir=None, *, shuffle_files=False, for_service=False):
    """Returns `split` as an unbatched `tf.data.Dataset` of `(image, label)`.

    Images are uint8 `[H, W, 3]` (224x224 for top20/all, 64x64 for
    synthetic), labels int64 indices into `class_names(dataset)`.
    `for_service`: to be split between tf.data service workers by file
    (`pipeline.through_service`), so no worker may assert the split's size.

    Raises:
        UserError: the dataset was never built in `data_dir`, or `split` is
            not one of train, validation, test.
    """
    ds_builder = prepared_builder(dataset, data_dir)
    if split not in ds_builder.info.splits:
        raise UserError(
            f"unknown split {split!r} of {dataset}: use one of " + ", ".join(ds_builder.info.splits)
        )
    read_config = tfds.ReadConfig(assert_cardinality=not for_service)
    return ds_builder.as_dataset(
        split=split, as_supervised=True, shuffle_files=shuffle_files, read_config=read_config
    )


def split_labels(dataset: str, split: str, data_dir=None):
    """Returns the int64 labels of `split`, in order, without decoding images."""
    ds_builder = prepared_builder(dataset, data_dir)
    ds = ds_builder.as_dataset(
        split=split, decoders={"image": tfds.decode.SkipDecoding()}, shuffle_files=False
    )
    labels = [int(label) for label in ds.map(lambda example: example["label"]).as_numpy_iterator()]
    return np.asarray(labels, dtype=np.int64)


def class_names(dataset: str, data_dir=None) -> list[str]:
    """The country folder names in label order (from the versioned label file)."""
    return list(builder(dataset, data_dir).info.features["label"].names)


def build(
    config_name, *, manual_dir=None, data_dir=None, overwrite=False, num_workers=None
) -> dict:
    """Builds `geoguessr/<config>` and returns its build report.

    The dataset is generated in a temporary folder of `data_dir`
    (`incomplete.keras_geo.<config>.*`) and moved into place only once it is
    complete, so a failed or interrupted build (or rebuild with `overwrite`)
    leaves the previous dataset as it was; what a killed build left behind is
    deleted by the next build.

    Args:
        config_name: "top20", "all" or "synthetic" (or "geoguessr/<config>").
        manual_dir: Folder with the Kaggle download (zip, `compressed_dataset/`
            or country folders), or the `.zip` itself. None:
            `<data_dir>/downloads/manual`.
        data_dir: TFDS data dir. None: TFDS' default.
        overwrite: Rebuild even if the dataset is already prepared.
        num_workers: Processes that decode and resize frames while TFDS
            writes; None: all cores. The built examples do not depend on it.

    Returns:
        The report (`build_report.json` in the dataset directory): `num_examples`
        per split, `skipped` files with their reason, `skipped_counts`,
        `excluded_folders`, `source`, `manual_dir`; plus `path`, the dataset
        directory.

    Raises:
        UserError: bad manual dir, data that fails the config's checks, a data
            dir that is not writable, a dataset already built from another
            `manual_dir` (without `overwrite`), or another process building
            in `data_dir` (`keras_geo.locks`).
    """
    if num_workers is not None and num_workers < 1:
        raise UserError(f"--num-workers must be >= 1. Received: {num_workers}")
    root = pathlib.Path(builder(config_name, data_dir).data_dir_root)
    with locks.exclusive(root, "--data-dir"):  # One build at a time per data dir.
        return _build(config_name, manual_dir, data_dir, overwrite, num_workers)


def _build(config_name, manual_dir, data_dir, overwrite, num_workers):
    ds_builder = builder(config_name, data_dir)
    config = ds_builder.builder_config
    root = pathlib.Path(ds_builder.data_dir_root)
    with contextlib.suppress(OSError):  # A read-only data dir keeps them.
        _remove_leftovers(root, config.name)
    if is_prepared(ds_builder) and not overwrite:
        if manual_dir is not None and not config.synthetic:
            _check_same_source(ds_builder, pathlib.Path(manual_dir).resolve())
        return read_report(ds_builder)
    try:
        limits.max_pixels()
    except ValueError as error:
        raise UserError(str(error)) from None
    if not config.synthetic:
        manual_dir = pathlib.Path(manual_dir or root / "downloads" / "manual").resolve()
    paths.check_writable(root, "--data-dir")
    if not config.synthetic:
        _check_manual_dir(ds_builder, manual_dir)
    tmp_root = root / f"{_INCOMPLETE}{config.name}.{uuid.uuid4().hex}"
    tmp_builder = builder(config_name, tmp_root)
    tmp_builder.num_workers = num_workers or parallel.default_num_workers()
    # The synthetic build takes seconds: no progress bars naming temporary folders.
    tfds.display_progress_bar(not config.synthetic)
    try:
        _prepare(tmp_builder, manual_dir, root)
        _swap(builder(config_name, tmp_root).data_path, ds_builder.data_path, tmp_root)
    finally:
        tfds.display_progress_bar(True)  # TFDS' default.
        shutil.rmtree(tmp_root, ignore_errors=True)
    return read_report(builder(config_name, data_dir))


def _prepare(ds_builder, manual_dir, data_dir):
    download_config = tfds.download.DownloadConfig(manual_dir=_str(manual_dir))
    try:
        # TFDS prints "Downloading and preparing dataset Unknown size ... to
        # <temporary folder>" and "... prepared to <temporary folder>" on stdout:
        # nothing is downloaded here, and `build`'s caller reports the result.
        with contextlib.redirect_stdout(io.StringIO()):
            ds_builder.download_and_prepare(download_config=download_config)
    except BuildError as error:
        raise UserError(str(error)) from None
    except Exception as error:  # A full disk comes as a RuntimeError (`compat.tfds`).
        if not compat_tfds.is_disk_full(error):
            raise
        raise StorageError(
            f"cannot write the dataset in {data_dir} (No space left on "
            "device): free space, then rerun the same command."
        ) from None


def _swap(new, final, tmp_root):
    """Moves the complete dataset `new` to `final`; a previous one goes to `tmp_root`."""
    final = pathlib.Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        os.replace(final, tmp_root / f"previous.{final.name}")
    os.replace(new, final)


def _remove_leftovers(root, config_name):
    """Deletes what killed builds left: ours and TFDS' own `incomplete.*` folders."""
    paths.remove_leftovers(root, f"{_INCOMPLETE}{config_name}.*")
    paths.remove_leftovers(root / DATASET_NAME / config_name, "incomplete.*")


def _check_same_source(ds_builder, manual_dir):
    """UserError if the prepared dataset was built from another manual dir."""
    built_from = read_report(ds_builder).get("manual_dir")
    if built_from and pathlib.Path(built_from).resolve() != manual_dir:
        raise UserError(
            f"geoguessr/{ds_builder.builder_config.name} in {ds_builder.data_dir_root} is "
            f"already built from {built_from}; --overwrite to rebuild from {manual_dir}"
        )


def read_report(ds_builder) -> dict:
    """The build report of a prepared builder (minimal if it has none)."""
    path = ds_builder.data_path / "build_report.json"
    if path.exists():
        report = json.loads(path.read_text(encoding="utf-8"))
    else:
        report = {"skipped": [], "skipped_counts": {}, "excluded_folders": {}}
        report["num_examples"] = {
            name: split.num_examples for name, split in ds_builder.info.splits.items()
        }
    report["path"] = str(ds_builder.data_path)
    return report


def ensure_synthetic(data_dir=None) -> str:
    """Builds `geoguessr/synthetic` in `data_dir` unless it is already there.

    Returns:
        The dataset directory.
    """
    ds_builder = builder("synthetic", data_dir)
    if not is_prepared(ds_builder):
        build("synthetic", data_dir=data_dir)
    return str(ds_builder.data_path)


def _check_manual_dir(ds_builder, manual_dir):
    """UserError with the download instructions unless the manual dir has the data."""
    try:
        layout.locate(manual_dir, read_labels("labels_all.txt"))
    except layout.LayoutError as error:
        instructions = " ".join(ds_builder.MANUAL_DOWNLOAD_INSTRUCTIONS.split())
        raise UserError(f"{error}. {instructions}") from None


def prepared_builder(dataset: str, data_dir=None):
    """The builder of `dataset`; UserError naming the build command if unbuilt."""
    ds_builder = builder(dataset, data_dir)
    if not is_prepared(ds_builder):
        raise UserError(
            f"dataset {DATASET_NAME}/{config_of(dataset)} is not built in "
            f"{ds_builder.data_dir_root}: run `{build_command(dataset, data_dir)}`"
        )
    return ds_builder


def _str(path):
    return None if path is None else str(path)
