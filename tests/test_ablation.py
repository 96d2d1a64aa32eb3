"""`keras-geo ablate`: variants into sibling run dirs, one comparison table + chart."""

import csv
import json

import pytest

from keras_geo import ablation
from keras_geo.cli.main import main
from keras_geo.errors import UserError

TINY = [
    "--set",
    "image_size=32",
    "--set",
    "epochs_frozen=1",
    "--set",
    "epochs_finetune=0",
    "--set",
    "batch_size=64",
]


def test_parse_variant_types_and_errors():
    variant = ablation.parse_variant("demo:flip=true,tau_km=75,backbone=vgg16,finetune_stages=all")
    assert variant.slug == "demo-flip=true-tau_km=75-backbone=vgg16-finetune_stages=all"
    config = variant.config
    assert (config.flip, config.tau_km, config.backbone, config.finetune_stages) == (
        True,
        75.0,
        "vgg16",
        "all",
    )
    assert ablation.parse_variant("demo:tau_km=none").config.tau_km is None
    with pytest.raises(UserError, match="Unknown experiment 'nope'"):
        ablation.parse_variant("nope")
    with pytest.raises(UserError, match="Unknown TrainConfig field"):
        ablation.parse_variant("demo:flipp=false")
    with pytest.raises(UserError, match="`flip` expects true or false"):
        ablation.parse_variant("demo:flip=maybe")
    with pytest.raises(UserError, match="`backbone` must be one of"):
        ablation.parse_variant("demo:backbone=resnet5")


def test_ablate_two_variants_on_synthetic_data(synthetic_data_dir, tmp_path, capsys):
    out = tmp_path / "ablation"
    argv = ["ablate", "--out", str(out), "--data-dir", synthetic_data_dir, *TINY]
    variants = ["demo:loss=crossentropy", "demo:backbone=vgg16"]
    assert main([*argv, *variants]) == 0
    printed = capsys.readouterr().out
    assert "| `demo:backbone=vgg16` |" in printed
    with open(out / "comparison.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["variant"] for row in rows] == variants
    assert {row["split"] for row in rows} == {"validation"}  # Choose by validation.
    for row in rows:
        validation = out / row["run_dir"] / "metrics" / "validation.json"
        assert json.loads(validation.read_text())["accuracy"] == float(row["accuracy"])
        assert 0 <= float(row["balanced_accuracy"]) <= 1 and float(row["median_km"]) >= 0
    assert (out / "comparison.md").read_text().count("\n") == 4
    assert (out / "comparison.png").stat().st_size > 0
    # A rerun trains nothing again and rewrites the same table.
    assert main([*argv, *variants]) == 0
    with open(out / "comparison.csv") as f:
        assert list(csv.DictReader(f)) == rows
    # --split test reports the test metrics of the same runs, training nothing.
    assert main([*argv, "--split", "test", *variants]) == 0
    with open(out / "comparison.csv") as f:
        tested = list(csv.DictReader(f))
    for row in tested:
        test = out / row["run_dir"] / "metrics" / "test.json"
        assert row["split"] == "test"
        assert json.loads(test.read_text())["accuracy"] == float(row["accuracy"])


def test_bad_variant_is_a_one_line_error_and_trains_nothing(tmp_path, capsys):
    out = tmp_path / "ablation"
    assert main(["ablate", "--out", str(out), "demo", "demo:lr_schedule=cosin"]) != 0
    err = capsys.readouterr().err.strip()
    assert "`lr_schedule` must be one of 'constant', 'cosine'" in err and "\n" not in err
    assert not out.exists()
