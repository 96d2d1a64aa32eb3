"""End-to-end builds of geoguessr from tiny fake Kaggle folders, and the loaders."""

import io
import json
import zipfile

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from keras_geo import datasets
from keras_geo.errors import UserError
from tfds_geoguessr.geoguessr.geoguessr_dataset_builder import Builder, read_labels
from tfds_geoguessr.geoguessr.make_dummy_data import SIZE, write_kaggle_folder

VERSION = str(Builder.VERSION)  # The dataset folder of this builder version.

VERSION = str(Builder.VERSION)  # The dataset folder of this builder version.

TOP20 = read_labels("labels_top20.txt")
ALL = read_labels("labels_all.txt")


def _image_bytes(fmt, size=40):
    pixels = np.random.default_rng(1).integers(0, 256, (size, size, 3), np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


BAD_FILES = {  # name -> (content, reason in the report or None if decodable)
    "France/.DS_Store": (b"\x00\x00\x00\x01Bud1", "system file"),
    "Japan/Thumbs.db": (b"\xd0\xcf\x11\xe0", "system file"),
    "Spain/empty.jpg": (b"", "empty file"),
    "Italy/truncated.jpg": (_image_bytes("JPEG")[:800], "undecodable"),
    "Brazil/notes.txt": (b"not an image", "undecodable"),
    "Germany/png_data.jpg": (_image_bytes("PNG"), None),
    "Sweden/UPPER.JPG": (_image_bytes("JPEG"), None),
    "Norway/other.jpeg": (_image_bytes("JPEG"), None),
    "Canada/nested/deep/canvas_9.jpg": (_image_bytes("JPEG"), None),
}


def _bad_kaggle_zip(tmp_path):
    """Zip in the Kaggle layout: 3 images per top-20 country plus BAD_FILES."""
    folder = write_kaggle_folder(tmp_path / "src", {c: 3 for c in TOP20})
    write_kaggle_folder(folder, {"Netherlands": 1})
    manual_dir = tmp_path / "manual"
    manual_dir.mkdir()
    with zipfile.ZipFile(manual_dir / "archive.zip", "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                name = path.relative_to(folder).as_posix()
                archive.write(path, "compressed_dataset/" + name)
        for name, (content, _) in BAD_FILES.items():
            archive.writestr("compressed_dataset/" + name, content)
        archive.writestr("compressed_dataset/readme.txt", b"hello")
    return folder, manual_dir


def _file_names(data_dir, config, split):
    ds = tfds.load(f"geoguessr/{config}", split=split, data_dir=data_dir)
    names = [ex["file_name"].decode() for ex in ds.as_numpy_iterator()]
    for ex in ds.take(1).as_numpy_iterator():
        # The fake frames are smaller than 224 px: stored at their own size, not upscaled.
        assert ex["image"].shape == (SIZE, SIZE, 3)
    return names


def test_build_from_zip_with_bad_inputs(tmp_path):
    folder, manual_dir = _bad_kaggle_zip(tmp_path)
    data_dir = str(tmp_path / "tfds")
    report = datasets.build("top20", manual_dir=manual_dir, data_dir=data_dir)

    expected_skips = {n: r for n, (_, r) in BAD_FILES.items() if r}
    expected_skips["compressed_dataset/readme.txt"] = "not in a country folder"
    skips = {item["file"]: item["reason"].split(":")[0] for item in report["skipped"]}
    assert skips == expected_skips
    assert report["skipped_counts"] == {
        "empty file": 1,
        "not in a country folder": 1,
        "system file": 2,
        "undecodable": 2,
    }
    assert report["excluded_folders"]["Netherlands"]["reason"] == "not in this config"
    valid = {p.relative_to(folder).as_posix() for p in folder.rglob("*.jpg")}
    valid = {n for n in valid if not n.startswith("Netherlands/")}
    valid |= {n for n, (_, r) in BAD_FILES.items() if r is None}
    per_split = {s: _file_names(data_dir, "top20", s) for s in report["num_examples"]}
    every = [name for names in per_split.values() for name in names]
    assert sorted(every) == sorted(valid)  # Each decodable image in exactly one split.
    assert sum(report["num_examples"].values()) == len(valid) == 64
    assert len(report["per_country"]["train"]) == 20
    for split, count in report["num_examples"].items():
        assert sum(report["per_country"][split].values()) == count
    path = tmp_path / "tfds" / "geoguessr" / "top20" / VERSION / "build_report.json"
    assert json.loads(path.read_text())["num_examples"] == report["num_examples"]


def test_build_all_config_from_bare_folders(tmp_path):
    counts = {c: 1 for c in ALL}
    counts.update({"France": 4, "Japan": 3})
    manual_dir = write_kaggle_folder(tmp_path / "manual", counts, size=8)
    data_dir = str(tmp_path / "tfds")
    report = datasets.build("all", manual_dir=manual_dir, data_dir=data_dir)
    assert report["num_examples"] == {"train": 125, "validation": 2, "test": 2}
    assert report["per_country"]["test"] == {"France": 1, "Japan": 1}
    assert datasets.class_names("geoguessr/all", data_dir) == ALL
    labels = [int(y) for _, y in datasets.load_split("all", "train", data_dir)]
    assert sorted(set(labels)) == list(range(124))


def test_missing_countries_fail_naming_them(tmp_path):
    counts = {c: 3 for c in TOP20 if c not in ("Japan", "Spain")}
    manual_dir = write_kaggle_folder(tmp_path / "manual", counts, size=8)
    with pytest.raises(UserError, match="2 countries: Japan, Spain"):
        datasets.build("top20", manual_dir=manual_dir, data_dir=str(tmp_path / "d"))


def test_too_few_images_for_validation_fails_naming_the_splits(tmp_path):
    manual_dir = write_kaggle_folder(tmp_path / "manual", {c: 2 for c in TOP20}, size=8)
    with pytest.raises(UserError, match=r"\['validation', 'test'\] would be empty"):
        datasets.build("top20", manual_dir=manual_dir, data_dir=str(tmp_path / "d"))


@pytest.mark.parametrize("make", [False, True])
def test_missing_or_empty_manual_dir_gives_instructions(tmp_path, make):
    manual_dir = tmp_path / "manual"
    if make:
        manual_dir.mkdir()
    with pytest.raises(UserError, match="kaggle datasets download"):
        datasets.build("top20", manual_dir=manual_dir, data_dir=str(tmp_path / "d"))


def test_default_manual_dir_missing_gives_instructions(tmp_path):
    with pytest.raises(UserError, match="ubitquitin/geolocation-geoguessr-images-50k"):
        datasets.build("top20", data_dir=str(tmp_path / "d"))


def test_load_split_unbuilt_names_the_command(tmp_path):
    with pytest.raises(UserError, match="keras-geo data build --dataset geoguessr/top20"):
        datasets.load_split("geoguessr/top20", "train", str(tmp_path))


def test_unknown_dataset_name():
    with pytest.raises(UserError, match="geoguessr/top20"):
        datasets.load_split("mnist", "train")


def test_synthetic(synthetic_data_dir):
    assert datasets.class_names("synthetic") == TOP20
    sizes = {}
    for split in ("train", "validation", "test"):
        ds = datasets.load_split("geoguessr/synthetic", split, synthetic_data_dir)
        labels = []
        for image, label in ds:
            assert image.shape == (64, 64, 3) and image.dtype == "uint8"
            labels.append(int(label))
        sizes[split] = np.bincount(labels, minlength=20).tolist()
    assert sizes == {"train": [44] * 20, "validation": [10] * 20, "test": [50] * 20}
    with pytest.raises(UserError, match="unknown split"):
        datasets.load_split("synthetic", "dev", synthetic_data_dir)


def test_the_synthetic_build_prints_nothing(tmp_path, capfd):
    """The demo's first seconds: no TFDS download line, no progress bars of temporary folders."""
    report = datasets.build("synthetic", data_dir=str(tmp_path))
    assert report["num_examples"] == {"train": 880, "validation": 200, "test": 1000}
    assert capfd.readouterr() == ("", "")


def test_ensure_synthetic_reuses_the_build(synthetic_data_dir):
    path = datasets.ensure_synthetic(synthetic_data_dir)
    info = f"{path}/dataset_info.json"
    before = tfds.core.Path(info).stat().mtime
    assert datasets.ensure_synthetic(synthetic_data_dir) == path
    assert tfds.core.Path(info).stat().mtime == before
