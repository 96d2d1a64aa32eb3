"""`data build` on bad sources and bad disks: nothing lost, nothing silent."""

import io
import json
import os
import zipfile

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from keras_geo import datasets
from keras_geo.cli.main import main
from keras_geo.errors import UserError
from tfds_geoguessr.geoguessr import frames, limits
from tfds_geoguessr.geoguessr import geoguessr_dataset_builder as gdb
from tfds_geoguessr.geoguessr.make_dummy_data import write_kaggle_folder

VERSION = str(gdb.Builder.VERSION)  # The dataset folder of this builder version.

TOP20 = gdb.read_labels("labels_top20.txt")


def _source(path, skip=(), per_country=3):
    return write_kaggle_folder(path, {c: per_country for c in TOP20 if c not in skip}, size=8)


def _file_names(data_dir, split="train"):
    ds = tfds.load("geoguessr/top20", split=split, data_dir=str(data_dir))
    return sorted(ex["file_name"].decode() for ex in ds.as_numpy_iterator())


def _leftovers(data_dir):
    return sorted(p.name for p in data_dir.rglob("incomplete.*"))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A top20 dataset built from 3 images per country: `(data_dir, manual_dir)`."""
    tmp = tmp_path_factory.mktemp("built")
    manual_dir = _source(tmp / "manual")
    datasets.build("top20", manual_dir=manual_dir, data_dir=tmp / "tfds")
    return tmp / "tfds", manual_dir


def test_overwrite_from_a_bad_source_keeps_the_dataset(built, tmp_path):
    data_dir, _ = built
    before = _file_names(data_dir)
    with pytest.raises(UserError, match="no images for 1 countries: Japan"):
        datasets.build(
            "top20",
            manual_dir=_source(tmp_path / "m", skip=["Japan"]),
            data_dir=data_dir,
            overwrite=True,
        )
    assert _file_names(data_dir) == before
    assert _leftovers(data_dir) == []


def test_overwrite_from_a_source_that_crashes_midway_keeps_the_dataset(
    built, tmp_path, monkeypatch
):
    data_dir, _ = built
    before = _file_names(data_dir)
    calls = []

    def crash_on_tenth(data, size, max_pixels):
        calls.append(1)
        if len(calls) == 10:
            raise RuntimeError("source disappeared")
        return original(data, size, max_pixels)

    original = frames.encode_example
    monkeypatch.setattr(frames, "encode_example", crash_on_tenth)
    with pytest.raises(RuntimeError, match="source disappeared"):
        datasets.build(  # One worker: the patched function runs in this process.
            "top20",
            manual_dir=_source(tmp_path / "m"),
            data_dir=data_dir,
            overwrite=True,
            num_workers=1,
        )
    assert _file_names(data_dir) == before
    assert _leftovers(data_dir) == []


def test_overwrite_replaces_the_dataset_after_success(tmp_path):
    data_dir = tmp_path / "tfds"
    datasets.build("top20", manual_dir=_source(tmp_path / "a"), data_dir=data_dir)
    bigger = _source(tmp_path / "b", per_country=4)
    report = datasets.build("top20", manual_dir=bigger, data_dir=data_dir, overwrite=True)
    assert sum(report["num_examples"].values()) == 80
    assert report["manual_dir"] == str(bigger)
    assert len(_file_names(data_dir)) == 40


def test_leftovers_of_a_killed_build_are_removed(tmp_path):
    data_dir = tmp_path / "tfds"
    ours = data_dir / "incomplete.keras_geo.top20.0123abcd" / "geoguessr"
    theirs = data_dir / "geoguessr" / "top20" / f"incomplete.4567_{VERSION}"
    for folder in (ours, theirs):
        folder.mkdir(parents=True)
        (folder / "shard.tfrecord").write_bytes(b"x" * 100)
    datasets.build("top20", manual_dir=_source(tmp_path / "m"), data_dir=data_dir)
    assert _leftovers(data_dir) == []


def test_a_different_manual_dir_is_not_silently_ignored(built, tmp_path):
    data_dir, manual_dir = built
    assert datasets.build("top20", manual_dir=manual_dir, data_dir=data_dir)["num_examples"]
    assert datasets.build("top20", data_dir=data_dir)["manual_dir"] == str(manual_dir)
    other = _source(tmp_path / "other")
    with pytest.raises(UserError) as error:
        datasets.build("top20", manual_dir=other, data_dir=data_dir)
    assert str(error.value).endswith(
        f"already built from {manual_dir}; --overwrite to rebuild from {other}"
    )


def test_a_country_with_no_decodable_file_fails_the_build(tmp_path):
    manual_dir = _source(tmp_path / "m")
    for path in (manual_dir / "Japan").iterdir():
        path.write_bytes(b"not an image at all")
    with pytest.raises(UserError, match="no usable image for 1 countries: Japan"):
        datasets.build("top20", manual_dir=manual_dir, data_dir=tmp_path / "tfds")
    assert not (tmp_path / "tfds" / "geoguessr" / "top20").exists()


def test_odd_entries_are_skipped_and_reported_by_printable_name(tmp_path):
    manual_dir = _source(tmp_path / "m")
    france = manual_dir / "France"
    good = next(france.iterdir()).read_bytes()
    (france / os.fsdecode(b"caf\xe9.jpg")).write_bytes(good)  # Latin-1 name, not UTF-8.
    (france / "loop").symlink_to("..")  # A folder that contains itself.
    (france / "self").symlink_to("self")  # ELOOP on stat.
    (france / "dangling.jpg").symlink_to("nowhere.jpg")
    os.mkfifo(france / "pipe.jpg")  # Reading it would block forever.
    report = datasets.build("top20", manual_dir=manual_dir, data_dir=tmp_path / "tfds")
    reasons = {item["file"]: item["reason"] for item in report["skipped"]}
    assert reasons == {
        "France/caf\\xe9.jpg": "file name is not valid UTF-8",
        "France/loop": "symbolic link to a folder already listed (loop)",
        "France/self": "symbolic link loop or to nothing",
        "France/dangling.jpg": "symbolic link loop or to nothing",
        "France/pipe.jpg": "not a regular file",
    }
    assert report["per_country"]["train"]["France"] == 1  # The 3 good files still count.
    path = tmp_path / "tfds" / "geoguessr" / "top20" / VERSION / "build_report.json"
    assert json.loads(path.read_text())["skipped"] == report["skipped"]


def test_a_zip_given_as_manual_dir_is_read(tmp_path):
    folder = _source(tmp_path / "src")
    archive = tmp_path / "geoguessr.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*.jpg")):
            zf.write(path, "compressed_dataset/" + path.relative_to(folder).as_posix())
    report = datasets.build("top20", manual_dir=archive, data_dir=tmp_path / "tfds")
    assert sum(report["num_examples"].values()) == 60
    truncated = tmp_path / "bad" / "geoguessr.zip"
    truncated.parent.mkdir()
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    for manual_dir in (truncated, truncated.parent):
        with pytest.raises(UserError, match=f"{truncated} is not a readable zip: corrupt"):
            datasets.build("top20", manual_dir=manual_dir, data_dir=tmp_path / "t2")


def test_images_above_the_pixel_limit_are_skipped(tmp_path, monkeypatch):
    assert limits.max_pixels() == limits.MAX_PIXELS == 50_000_000
    manual_dir = _source(tmp_path / "m")
    Image.new("RGB", (50, 40)).save(manual_dir / "France" / "huge.png")
    monkeypatch.setenv(limits.MAX_PIXELS_ENV, "1000")
    report = datasets.build("top20", manual_dir=manual_dir, data_dir=tmp_path / "tfds")
    reasons = {item["file"]: item["reason"] for item in report["skipped"]}
    assert reasons == {
        "France/huge.png": "too large: 50x40 pixels (0.0 MP) is above the limit of "
        "0.0 MP (KERAS_GEO_MAX_PIXELS)"
    }
    assert report["skipped_counts"] == {"too large": 1}
    monkeypatch.setenv(limits.MAX_PIXELS_ENV, "lots")
    with pytest.raises(UserError, match="KERAS_GEO_MAX_PIXELS must be a positive integer"):
        datasets.build("top20", manual_dir=manual_dir, data_dir=tmp_path / "t2")


def test_a_read_only_data_dir_is_refused_up_front(tmpfs, tmp_path, capsys):
    data_dir = tmpfs("1m")
    tmpfs.read_only(data_dir)
    manual_dir = _source(tmp_path / "m")
    argv = ["data", "build", "--manual-dir", str(manual_dir), "--data-dir", str(data_dir)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"keras-geo: error: --data-dir {data_dir} is not writable (Read-only")
    assert err.count("\n") == 1


def test_a_full_disk_during_a_build_is_one_line_and_a_rerun_builds(tmpfs, tmp_path, capsys):
    import subprocess

    data_dir = tmpfs("64k")
    manual_dir = _source(tmp_path / "m")
    argv = ["data", "build", "--manual-dir", str(manual_dir), "--data-dir", str(data_dir)]
    assert main(argv) == 1
    err = capsys.readouterr().err.splitlines()[-1]  # After TFDS' progress bars.
    assert err.startswith(f"keras-geo: error: cannot write the dataset in {data_dir} (No space")
    assert list(data_dir.iterdir()) == []  # The partial build is gone.
    subprocess.run(["mount", "-o", "remount,size=8m", str(data_dir)], check=True)
    assert main(argv) == 0
    assert len(_file_names(data_dir)) == 20


def test_data_info_out_that_is_a_file_is_refused(built, tmp_path, capsys):
    out = tmp_path / "out.txt"
    out.write_text("mine")
    data_dir, _ = built
    assert main(["data", "info", "--data-dir", str(data_dir), "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"keras-geo: error: --out {out} is a file, not a directory: pass a directory.\n"
    )
    assert out.read_text() == "mine"


# --- Every PIL mode is stored as serving decodes it -------------------------

MODES = ("1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F")
STORED_SIZE = 224  # top20 stores 224x224: a source of that size is not resized.


def _mode_file(mode):
    """`(name, bytes)` of a smooth 224x224 image in PIL `mode`."""
    ramp = np.linspace(0, 1, STORED_SIZE)
    rgb = np.stack([np.outer(ramp, ramp), np.outer(ramp, 1 - ramp), np.outer(1 - ramp, ramp)], -1)
    image = Image.fromarray((rgb * 255).astype(np.uint8))
    grey = np.outer(ramp, ramp)
    formats = {"CMYK": "JPEG", "I": "TIFF", "F": "TIFF"}
    if mode == "I;16":
        image = Image.fromarray((grey * 65535).astype(np.uint16))
    elif mode == "I":
        image = Image.fromarray((grey * 65535).astype(np.int32))
    elif mode == "F":
        image = Image.fromarray(grey.astype(np.float32))
    elif mode == "P":  # An adaptive palette: no dithering noise for JPEG storage to blur.
        image = image.convert("P", palette=Image.Palette.ADAPTIVE)
    elif mode == "1":
        image = image.convert("L").point(lambda v: 255 * (v > 100)).convert("1")
    else:
        image = image.convert(mode)
    assert image.mode == mode
    fmt = formats.get(mode, "PNG")
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": 98} if fmt == "JPEG" else {}))
    suffix = mode.replace(";", "_")
    return f"mode_{suffix}.{fmt.lower()}", buffer.getvalue()


@pytest.fixture(scope="module")
def modes_build(tmp_path_factory):
    """Builds top20 with one file of each mode in France: `(stored, report, files)`."""
    tmp = tmp_path_factory.mktemp("modes")
    manual_dir = _source(tmp / "m")
    files = {}
    for mode in MODES:
        name, data = _mode_file(mode)
        (manual_dir / "France" / name).write_bytes(data)
        files[mode] = (f"France/{name}", data)
    report = datasets.build("top20", manual_dir=manual_dir, data_dir=tmp / "tfds")
    stored = {}
    for split in ("train", "validation", "test"):
        ds = tfds.load("geoguessr/top20", split=split, data_dir=str(tmp / "tfds"))
        for ex in ds.as_numpy_iterator():
            stored[ex["file_name"].decode()] = ex["image"]
    return stored, report, files


@pytest.mark.parametrize("mode", MODES)
def test_every_pil_mode_is_stored_as_predict_decodes_it(modes_build, mode):
    from keras_geo import predict
    from keras_geo.export import decode_image

    stored, report, files = modes_build
    file_name, data = files[mode]
    reasons = {item["file"]: item["reason"] for item in report["skipped"]}
    if mode in ("I", "F"):  # 32-bit TIFFs: serving cannot decode them, so neither is stored.
        assert reasons[file_name].startswith(f"unsupported mode: {mode} (32-bit pixels)")
        assert file_name not in stored
        with pytest.raises(ValueError, match="not an image"):
            predict.check_image_bytes(data)
        return
    served = decode_image(data, image_size=STORED_SIZE).numpy()
    difference = np.abs(stored[file_name].astype(float) - served)
    assert difference.mean() < 3, (mode, difference.mean())  # JPEG q95 storage.
