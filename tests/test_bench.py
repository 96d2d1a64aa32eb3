"""`keras-geo bench` and the `benchmarks/` scripts run on tiny data and end with a result line.

Correctness only: no timing is asserted (the machine is shared and noisy).
"""

import importlib
import json
import pathlib
import re
import sys

import numpy as np
import pytest

from keras_geo.bench import timing
from keras_geo.cli.main import main

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # The scripts import each other as top-level modules.
import baseline  # noqa: E402
import common  # noqa: E402
import fake_kaggle  # noqa: E402

SCRIPTS = (
    "baseline", "cache", "fake_kaggle", "first_step", "litert", "report", "scaling", "storage",
)  # fmt: skip

RESULT = re.compile(r"^images/s: \d+\.\d$")
TINY_FRAME = "64x32"


def script(argv):
    """Runs `python benchmarks/<argv[0]>.py argv[1:]` in this process; returns the exit status."""
    name, *rest = argv
    return common.run(importlib.import_module(name).main, rest)


def test_every_script_starts_with_its_command(tmp_path, capsys):
    for name in SCRIPTS:
        doc = importlib.import_module(name).__doc__
        assert doc.startswith(f"Usage: `python benchmarks/{name}.py"), name
    assert script(["fake_kaggle", "--out", str(tmp_path), "--per-country", "1"]) == 0
    assert capsys.readouterr().out.startswith("20 frames of 1536x662")


def last_line(capsys):
    return capsys.readouterr().out.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def tiny_kaggle(tmp_path_factory):
    """A Kaggle-layout folder: 20 countries x 3 frames of 64x32."""
    root = tmp_path_factory.mktemp("kaggle")
    return fake_kaggle.make_fake_kaggle(root, images_per_country=3, size=(64, 32))


def test_result_line_format():
    assert timing.result_line(221.04) == "images/s: 221.0"
    assert RESULT.match(timing.result_line(3))


def test_timed_loop_counts_images_after_warmup():
    calls = []
    measured = timing.timed_loop(
        lambda: calls.append(1) or 4, seconds=None, warmup_steps=2, max_steps=3
    )
    assert (measured.images, len(calls)) == (12, 5)
    assert measured.seconds >= 0 and measured.cpu_seconds >= 0
    assert timing.rates(measured)["images"] == 12


def test_fake_kaggle_layout_and_subsets(tmp_path, tiny_kaggle):
    folders = sorted(p.name for p in tiny_kaggle.iterdir())
    assert folders == sorted(fake_kaggle.TOP20)
    assert fake_kaggle.image_count(tiny_kaggle) == 60
    small = fake_kaggle.make_fake_kaggle(tmp_path, images_per_country=2, size=(64, 32))
    for path in small.rglob("*.jpg"):  # A smaller folder is a subset, pixel for pixel.
        twin = tiny_kaggle / path.relative_to(small)
        assert twin.read_bytes() == path.read_bytes()
    linked = fake_kaggle.make_fake_kaggle(
        tmp_path / "linked", images_per_country=2, size=(64, 32), link_from=tiny_kaggle
    )
    for path in linked.rglob("*.jpg"):
        assert path.samefile(tiny_kaggle / path.relative_to(linked))


def test_fake_frame_weighs_like_a_kaggle_frame(tmp_path):
    root = fake_kaggle.make_fake_kaggle(tmp_path, images_per_country=1, countries=("Japan",))
    (path,) = root.rglob("*.jpg")
    from PIL import Image

    assert Image.open(path).size == (1536, 662)
    assert 90_000 < path.stat().st_size < 200_000  # Real frames: ~135 KB.


def test_paper_transform_is_normalised_chw(tiny_kaggle):
    path = next(tiny_kaggle.rglob("*.jpg"))
    array = baseline.paper_transform(str(path), np.random.default_rng(0), size=40)
    assert array.shape == (3, 40, 40) and array.dtype == np.float32
    assert -2.2 < array.min() and array.max() < 2.7  # (0 - mean)/std .. (1 - mean)/std


def test_random_resized_crop_box_stays_inside():
    rng = np.random.default_rng(0)
    for _ in range(200):
        left, top, w, h = baseline.random_resized_crop_box(rng, 224, 224)
        assert 0 <= left and left + w <= 224 and 0 <= top and top + h <= 224
        assert 0.08 * 224 * 224 * 0.9 <= w * h


def test_image_folder_labels_sorted_folders(tiny_kaggle):
    samples = baseline.image_folder(tiny_kaggle.parent)  # Folder holding compressed_dataset.
    assert len(samples) == 60
    assert samples[0][1] == 0 and samples[-1][1] == 19
    assert "/United States/" in samples[-1][0]


def test_bench_baseline(tiny_kaggle, capsys):
    flags = "--seconds 0.2 --batch-size 4 --workers 2 --image-size 32".split()
    code = script(["baseline", *flags, "--manual-dir", str(tiny_kaggle), "--json"])
    assert code == 0
    record = json.loads(capsys.readouterr().out)  # --json: the record alone on stdout.
    assert record["images_per_second"] > 0
    assert record["workers"] == 2 and record["images"] % 4 == 0 and record["images"] > 0


def test_bench_baseline_empty_dir_is_a_user_error(tmp_path, capsys):
    assert script(["baseline", "--manual-dir", str(tmp_path)]) == 2
    assert "No images found" in capsys.readouterr().err


def test_bench_input(synthetic_data_dir, capsys):
    flags = "--dataset geoguessr/synthetic --batch-size 8 --image-size 32 --seconds 0.2".split()
    code = main(["bench", "input", *flags, "--data-dir", synthetic_data_dir])
    assert code == 0
    assert RESULT.match(last_line(capsys))


def test_bench_input_unbuilt_dataset_names_build_command(tmp_path, capsys):
    flags = "--dataset geoguessr/top20 --seconds 0.2".split()
    code = main(["bench", "input", *flags, "--data-dir", str(tmp_path)])
    assert code == 2
    assert "keras-geo data build" in capsys.readouterr().err


def test_bench_train_frozen(capsys):
    flags = "--phase frozen --image-size 32 --batch-size 2 --steps 1".split()
    code = main(["bench", "train", *flags])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith(("device: CPU", "device: GPU"))
    assert RESULT.match(lines[-1])
    # --json: the details as one JSON document on stdout, nothing else.
    assert main(["bench", "train", *flags, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["steps"] == 1 and record["phase"] == "frozen"


def test_train_phases_train_nested_layer_sets():
    from keras_geo.bench.train import build_for_phase

    variants = {
        "frozen": ("frozen", "1"),
        "finetune": ("finetune", "1"),
        "full": ("finetune", "all"),
    }
    weights = {
        name: {
            w.path
            for w in build_for_phase(phase, image_size=32, finetune_stages=stages).trainable_weights
        }
        for name, (phase, stages) in variants.items()
    }
    assert weights["frozen"] < weights["finetune"] < weights["full"]
    assert all("conv5_" in path or "head" in path for path in weights["finetune"])


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["--phase finetune", "--phase finetune --finetune-stages all"])
def test_bench_train_backward_phases(capsys, phase):
    flags = "--image-size 32 --batch-size 2 --steps 1".split()
    code = main(["bench", "train", *phase.split(), *flags])
    assert code == 0
    assert RESULT.match(last_line(capsys))


def test_bench_train_phase_full_is_the_hidden_old_spelling_of_every_stage(capsys, monkeypatch):
    from keras_geo.bench import train as bench_train

    seen = {}

    def fake_run_train(phase, **kwargs):
        seen.update(phase=phase, stages=kwargs["finetune_stages"])
        return {"images_per_second": 1.0}

    monkeypatch.setattr(bench_train, "run_train", fake_run_train)
    assert main(["bench", "train", "--phase", "full", "--json"]) == 0
    assert seen == {"phase": "finetune", "stages": "all"}
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["bench", "train", "--help"])
    assert "--phase {frozen,finetune}" in capsys.readouterr().out


def test_bench_decode(capsys):
    flags = "--images 2 --frame-size 96x48 --image-size 32 --seconds 0.2".split()
    code = script(["storage", *flags])
    assert code == 0
    assert RESULT.match(last_line(capsys))
    assert script(["storage", *flags, "--json"]) == 0
    variants = [row["variant"] for row in json.loads(capsys.readouterr().out)["rows"]]
    assert variants == ["full", "full-dct2", "stored"]


def test_bench_cache(capsys, tmp_path):
    flags = "--images 8 --image-size 32 --batch-size 4".split()
    code = script(["cache", *flags, "--work-dir", str(tmp_path / "cache"), "--json"])
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert record["backbone_epoch_s"] > 0 and record["cached_epoch_s"] > 0


def test_bench_scaling(capsys, tmp_path):
    flags = f"--per-country 3 --factors 1,2 --frame-size {TINY_FRAME} --image-size 32 --seconds 0.2"
    code = script(["scaling", *flags.split(), "--work-dir", str(tmp_path), "--json"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [row["data_ratio"] for row in rows] == [1.0, 2.0]


def test_first_step_measures_both_compiles(monkeypatch):
    import first_step

    from keras_geo import experiments
    from keras_geo.config import TrainConfig

    tiny = TrainConfig(
        weights="none", backbone="vgg16", image_size=32, batch_size=4, lr_schedule="cosine"
    )
    monkeypatch.setattr(experiments, "get", lambda name: tiny)
    stock, ours = (first_step.measure(variant, steps=1) for variant in first_step.VARIANTS)
    assert stock["variant"] == "stock Keras" and ours["variant"] == "keras-geo"
    assert stock["optimizer"] == "keras.src.optimizers.adamw.AdamW"
    assert ours["optimizer"] == "keras_geo.compat.keras_adamw.AdamW"
    assert stock["trainable_variables"] == ours["trainable_variables"] == 8  # block5 + head
    assert min(stock["first_step_s"], ours["first_step_s"], ours["step_cpu_s"]) > 0


def test_first_step_failing_child_is_a_one_line_error(capsys):
    assert script(["first_step", "--experiment", "no_such_experiment", "--repeats", "1"]) == 2
    err = capsys.readouterr().err
    assert "the stock Keras measurement failed" in err and "no_such_experiment" in err


def test_bench_bad_arguments(capsys, tmp_path):
    assert script(["scaling", "--work-dir", str(tmp_path), "--factors", "x"]) == 2
    assert main(["bench", "train", "--image-size", "8"]) == 2
    assert "image_size" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_report_quick(tmp_path):
    from report import run_report

    out = tmp_path / "tables.md"
    run_report(tmp_path / "work", out, quick=True)
    text = out.read_text()
    for heading in (
        "Input pipeline",
        "Stored image size",
        "Training step",
        "Frozen phase",
        "Scaling",
    ):
        assert heading in text


def test_bench_train_backbones_side_by_side(capsys):
    argv = ["bench", "train", "--phase", "frozen", "--image-size", "32", "--batch-size", "2"]
    code = main([*argv, "--steps", "1", "--backbone", "vgg16", "efficientnetv2b0"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "efficientnetv2b0: " in printed and "x vgg16" in printed
    assert main([*argv, "--steps", "1", "--backbone", "vgg16", "efficientnetv2b0", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)["records"]
    assert [r["backbone"] for r in records] == ["vgg16", "efficientnetv2b0"]
    assert records[0]["parameters"] > records[1]["parameters"] > 0  # 14.7 M vs 5.9 M
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--backbone", "resnet5"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'resnet5'" in capsys.readouterr().err


def test_litert_measures_every_export_beside_the_saved_model(monkeypatch, capsys):
    import keras

    from keras_geo import model as geo_model

    def tiny_model(num_classes, *, image_size, **kwargs):  # Exports in seconds, not minutes.
        inputs = keras.Input((image_size, image_size, 3))
        x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
        x = keras.layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))

    monkeypatch.setattr(geo_model, "build_model", tiny_model)
    argv = ["litert", "--image-size", "32", "--calls", "2", "--repeats", "1"]
    assert script(argv) == 0
    assert RESULT.match(last_line(capsys))
    assert script([*argv, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]  # --json: the record alone on stdout.
    assert [row["export"] for row in rows] == [
        "SavedModel", "LiteRT float32", "LiteRT float16", "LiteRT dynamic int8",
    ]  # fmt: skip
    assert rows[0]["smaller"] == rows[0]["call_speedup"] == 1.0
    assert all(row["size_mb"] > 0 and row["call_ms"] > 0 and row["predict_ms"] > 0 for row in rows)
