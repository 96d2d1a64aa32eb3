"""Load and build the `geoguessr` TFDS dataset (package `tfds_geoguessr`).

`dataset` arguments accept a config name (`"top20"`) or a TFDS name
(`"geoguessr/top20"`, as in `TrainConfig.dataset`). `data_dir=None` means
TFDS' default (`~/tensorflow_datasets` or `$TFDS_DATA_DIR`).
"""

import json

from keras_geo.errors import UserError

DATASET_NAME = "geoguessr"
CONFIGS = ("top20", "all", "synthetic")


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
    from tfds_geoguessr.geoguessr.geoguessr_dataset_builder import Builder

    return Builder(config=config_of(dataset), data_dir=_str(data_dir), file_format="tfrecord")


def build_command(dataset: str, data_dir=None) -> str:
    """The `keras-geo data build` command that prepares `dataset`."""
    command = f"keras-geo data build --config {config_of(dataset)}"
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
    import tensorflow_datasets as tfds

    read_config = tfds.ReadConfig(assert_cardinality=not for_service)
    return ds_builder.as_dataset(
        split=split, as_supervised=True, shuffle_files=shuffle_files, read_config=read_config
    )


def class_names(dataset: str, data_dir=None) -> list[str]:
    """The country folder names in label order (from the versioned label file)."""
    return list(builder(dataset, data_dir).info.features["label"].names)


def build(
    config_name, *, manual_dir=None, data_dir=None, overwrite=False, num_workers=None
) -> dict:
    """Builds `geoguessr/<config>` and returns its build report.

    Args:
        config_name: "top20", "all" or "synthetic" (or "geoguessr/<config>").
        manual_dir: Folder with the Kaggle download (zip, `compressed_dataset/`
            or country folders). None: `<data_dir>/downloads/manual`.
        data_dir: TFDS data dir. None: TFDS' default.
        overwrite: Rebuild even if the dataset is already prepared.
        num_workers: Processes that decode and resize frames while TFDS
            writes; None: all cores. The built examples do not depend on it.

    Returns:
        The report (`build_report.json` in the dataset directory): `num_examples`
        per split, `skipped` files with their reason, `skipped_counts`,
        `excluded_folders`, `source`; plus `path`, the dataset directory.
    """
    import tensorflow_datasets as tfds

    from tfds_geoguessr.geoguessr import parallel

    if num_workers is not None and num_workers < 1:
        raise UserError(f"--num-workers must be >= 1. Received: {num_workers}")
    ds_builder = builder(config_name, data_dir)
    ds_builder.num_workers = num_workers or parallel.default_num_workers()
    mode = tfds.download.GenerateMode
    download_config = tfds.download.DownloadConfig(
        manual_dir=_str(manual_dir),
        # Regenerate (nothing is downloaded) or reuse a prepared dataset.
        download_mode=mode.REUSE_CACHE_IF_EXISTS if overwrite else mode.REUSE_DATASET_IF_EXISTS,
    )
    from tfds_geoguessr.geoguessr.geoguessr_dataset_builder import BuildError

    if overwrite or not ds_builder.is_prepared():
        if not ds_builder.builder_config.synthetic:
            _check_manual_dir(ds_builder, manual_dir)
        try:
            ds_builder.download_and_prepare(download_config=download_config)
        except BuildError as error:
            raise UserError(str(error)) from None
    return read_report(ds_builder)


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
    if not ds_builder.is_prepared():
        build("synthetic", data_dir=data_dir)
    return str(ds_builder.data_path)


def _check_manual_dir(ds_builder, manual_dir):
    """UserError with the download instructions unless the manual dir has the data."""
    from tfds_geoguessr.geoguessr import layout
    from tfds_geoguessr.geoguessr.geoguessr_dataset_builder import read_labels

    path = manual_dir or ds_builder.data_dir_root / "downloads" / "manual"
    try:
        layout.locate(path, read_labels("labels_all.txt"))
    except layout.LayoutError as error:
        instructions = " ".join(ds_builder.MANUAL_DOWNLOAD_INSTRUCTIONS.split())
        raise UserError(f"{error}. {instructions}") from None


def prepared_builder(dataset: str, data_dir=None):
    """The builder of `dataset`; UserError naming the build command if unbuilt."""
    ds_builder = builder(dataset, data_dir)
    if not ds_builder.is_prepared():
        raise UserError(
            f"dataset {DATASET_NAME}/{config_of(dataset)} is not built in "
            f"{ds_builder.data_dir_root}: run `{build_command(dataset, data_dir)}`"
        )
    return ds_builder


def _str(path):
    return None if path is None else str(path)
