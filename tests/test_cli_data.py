"""`keras-geo data build|info`, and loading the result with plain `tfds.load`."""

import csv
import json
import subprocess
import sys

from keras_geo.cli.main import main
from tfds_geoguessr.geoguessr.geoguessr_dataset_builder import read_labels
from tfds_geoguessr.geoguessr.make_dummy_data import write_kaggle_folder

TOP20 = read_labels("labels_top20.txt")

# A user's script: imports nothing of ours but tfds_geoguessr.
USER_SCRIPT = """
import json, sys
import tensorflow_datasets as tfds
import tfds_geoguessr
ds, info = tfds.load("geoguessr/top20", split="train", data_dir=sys.argv[1],
                     with_info=True)
examples = list(ds.as_numpy_iterator())
print(json.dumps({
    "n": len(examples),
    "shape": list(examples[0]["image"].shape),
    "labels": sorted({int(ex["label"]) for ex in examples}),
    "names": info.features["label"].names,
    "ours": sorted(m for m in sys.modules if m.split(".")[0] == "keras_geo"),
}))
"""


def test_build_then_plain_tfds_load_in_fresh_process(tmp_path, capsys):
    counts = {c: 4 for c in TOP20}
    counts.update({"Netherlands": 2, "Malaysia": 1})  # Smaller: excluded.
    write_kaggle_folder(tmp_path / "kaggle" / "compressed_dataset", counts, size=24)
    data_dir = str(tmp_path / "tfds")
    argv = ["data", "build", "--dataset", "geoguessr/top20", "--data-dir", data_dir]
    assert main([*argv, "--manual-dir", str(tmp_path / "kaggle")]) == 0
    out = capsys.readouterr().out
    # Nothing is downloaded, and the summary names the final folder, not TFDS' temporary one.
    assert "Downloading" not in out and "incomplete" not in out
    assert out.startswith("geoguessr/top20 in ")
    assert "train              40         20" in out
    assert "test               20         20" in out
    assert "excluded folders (not in this config): 2" in out

    result = subprocess.run(
        [sys.executable, "-c", USER_SCRIPT, data_dir],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    # 24 px frames are stored at their own size (builder 1.1.0: never upscaled).
    assert loaded["n"] == 40 and loaded["shape"] == [24, 24, 3]
    assert loaded["labels"] == list(range(20)) and loaded["names"] == TOP20
    assert loaded["ours"] == []


def test_build_bad_manual_dir_is_one_line_error(tmp_path, capsys):
    argv = ["data", "build", "--dataset", "geoguessr/top20", "--data-dir", str(tmp_path)]
    assert main([*argv, "--manual-dir", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("keras-geo: error:") and "\n" not in err
    assert "kaggle datasets download" in err


def test_info_unbuilt_names_the_build_command(tmp_path, capsys):
    argv = ["data", "info", "--dataset", "geoguessr/all", "--data-dir", str(tmp_path)]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    assert "keras-geo data build --dataset geoguessr/all" in capsys.readouterr().err


def test_info_writes_counts_and_figures(synthetic_data_dir, tmp_path):
    out = tmp_path / "info"
    argv = ["data", "info", "--dataset", "geoguessr/synthetic", "--data-dir", synthetic_data_dir]
    assert main([*argv, "--out", str(out)]) == 0
    with open(out / "counts.csv", newline="") as fobj:
        rows = list(csv.DictReader(fobj))
    assert [row["country"] for row in rows] == TOP20
    assert {(r["train"], r["validation"], r["test"], r["total"]) for r in rows} == {
        ("44", "10", "50", "104")
    }
    for name in ("class_distribution.png", "samples.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"


def test_build_synthetic_reuses_and_prints_summary(synthetic_data_dir, capsys):
    argv = ["data", "build", "--dataset", "geoguessr/synthetic", "--data-dir", synthetic_data_dir]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "train             880         20" in out
    assert "skipped files: 0" in out
