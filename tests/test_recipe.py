"""The options beyond the paper's recipe: class weights, per-phase rates and
schedules, deeper unfreezing, balanced accuracy, and their bad input."""

import json
import re

import keras
import numpy as np
import pytest
from train_helpers import compile_eagerly, synthetic_argv

from keras_geo import datasets, phase, runs, training
from keras_geo import model as geo_model
from keras_geo.cli.main import main
from keras_geo.config import Runtime, TrainConfig
from keras_geo.evaluation import compute_metrics
from keras_geo.metrics import BalancedAccuracy

SIZE = 32


def test_class_weights_by_hand():
    labels = [0, 0, 0, 1]
    balanced = phase.class_weights(TrainConfig(class_weight="balanced"), labels, 3)
    assert balanced == pytest.approx({0: 2 / 3, 1: 2.0, 2: 0.0})
    sqrt = phase.class_weights(TrainConfig(class_weight="sqrt"), labels, 3)
    # sqrt(2/3) : sqrt(2), rescaled so 3 w0 + w1 = 4.
    w0 = 4 / (3 + np.sqrt(3))
    assert sqrt == pytest.approx({0: w0, 1: w0 * np.sqrt(3), 2: 0.0})
    assert phase.class_weights(TrainConfig(), labels, 3) is None


def test_class_weights_change_the_training_loss_as_computed_by_hand():
    keras.utils.set_random_seed(0)
    model = geo_model.build_model(2, backbone="vgg16", image_size=SIZE, weights=None)
    compile_eagerly(model, learning_rate=1e-3, weight_decay=0.0)
    images = np.random.default_rng(0).integers(0, 256, (4, SIZE, SIZE, 3)).astype("float32")
    labels = np.array([0, 0, 0, 1])
    probabilities = keras.ops.convert_to_numpy(model(images))
    crossentropy = -np.log(probabilities[np.arange(4), labels])
    weights = phase.class_weights(TrainConfig(class_weight="balanced"), labels, 2)
    by_hand = np.mean([weights[label] for label in labels] * crossentropy)
    history = model.fit(images, labels, batch_size=4, epochs=1, class_weight=weights, verbose=0)
    assert history.history["loss"][0] == pytest.approx(by_hand, rel=1e-4)
    assert by_hand != pytest.approx(crossentropy.mean(), rel=1e-3)


def test_learning_rate_schedules():
    paper = TrainConfig()
    assert phase.learning_rate_schedule(paper, "finetune", 100) == 1e-3
    config = TrainConfig(
        learning_rate=1e-2,
        finetune_learning_rate=1e-4,
        lr_schedule="cosine",
        warmup_epochs=1,
        epochs_finetune=10,
    )
    schedule = phase.learning_rate_schedule(config, "finetune", 100)
    rates = [float(schedule(step)) for step in (0, 5, 10, 55, 100)]
    assert rates == pytest.approx([0.0, 5e-5, 1e-4, 5e-5, 0.0], abs=1e-9)
    frozen = phase.learning_rate_schedule(config, "frozen", 100)
    assert float(frozen(10)) == pytest.approx(1e-2)  # 10 steps an epoch: warm-up done
    constant = TrainConfig(warmup_epochs=2, epochs_finetune=4)
    schedule = phase.learning_rate_schedule(constant, "finetune", 40)
    assert [float(schedule(s)) for s in (10, 20, 30, 40)] == pytest.approx([5e-4, 1e-3, 1e-3, 1e-3])


def test_balanced_accuracy_metric_and_evaluation():
    labels = [0, 0, 0, 1]
    probabilities = [[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]]
    metric = BalancedAccuracy(2)
    metric.update_state(labels, probabilities)
    assert float(metric.result()) == pytest.approx(0.5)
    metrics = compute_metrics(labels, probabilities, ["France", "Japan"])
    assert metrics["accuracy"] == 0.75 and metrics["balanced_accuracy"] == 0.5


def test_new_options_train_into_a_run_dir(synthetic_data_dir, tmp_path):
    config = TrainConfig(
        dataset="geoguessr/synthetic",
        weights="none",
        backbone="vgg16",
        image_size=SIZE,
        epochs_frozen=0,  # no feature extraction: the image path is the one to test
        epochs_finetune=1,
        batch_size=64,
        finetune_stages="all",
        finetune_learning_rate=1e-4,
        lr_schedule="cosine",
        warmup_epochs=1,
        class_weight="balanced",
    )
    run_dir = tmp_path / "run"
    runtime = Runtime(data_dir=synthetic_data_dir)
    model = training.train(config, run_dir, runtime=runtime, verbose=0, steps_per_epoch=1)
    assert model.name == "geo_vgg16"
    assert all(layer.trainable for layer in geo_model.backbone(model).layers if layer.weights)
    schedule = model.optimizer.get_config()["learning_rate"]
    assert schedule["class_name"] == "CosineDecay"
    assert schedule["config"]["warmup_target"] == pytest.approx(1e-4)
    metrics = json.loads(runs.metrics_path(run_dir, "test").read_text())
    assert 0 <= metrics["balanced_accuracy"] <= 1 and metrics["tta"] == 1
    assert runs.stored_config(run_dir) == config
    history = runs.read_history(run_dir, "finetune")
    assert "val_balanced_accuracy" in history[0]


def test_split_labels_match_the_dataset(synthetic_data_dir):
    labels = datasets.split_labels("geoguessr/synthetic", "validation", synthetic_data_dir)
    ds = datasets.load_split("geoguessr/synthetic", "validation", synthetic_data_dir)
    np.testing.assert_array_equal(labels, [int(label) for _, label in ds.as_numpy_iterator()])


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--backbone", "resnet5"], "invalid choice: 'resnet5' \\(choose from 'resnet50', "),
        (["--finetune-stages", "6"], "`finetune_stages` must be 1-5 or 'all'"),
        (["--lr-schedule", "cosin"], "invalid choice: 'cosin' \\(choose from 'constant', 'cosine'"),
        (["--class-weight", "balance"], "invalid choice: 'balance' \\(choose from 'none', "),
    ],
)
def test_bad_training_flags_are_one_line_errors_and_leave_no_run_dir(
    flags, message, tmp_path, capsys
):
    run_dir = tmp_path / "run"
    try:  # A choice the flag refuses exits from argparse, a config check returns.
        code = main(
            ["train", "--run-dir", str(run_dir), "--dataset", "geoguessr/synthetic", *flags]
        )
    except SystemExit as exit_info:
        code = exit_info.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("keras-geo") and ": error: " in err and "\n" not in err
    assert re.search(message, err), err
    assert not run_dir.exists()


def test_weights_file_of_another_backbone_leaves_no_run_dir(synthetic_data_dir, tmp_path, capsys):
    path = tmp_path / "vgg16.weights.h5"
    geo_model.backbone(
        geo_model.build_model(2, backbone="vgg16", image_size=SIZE, weights=None)
    ).save_weights(path)
    run_dir = tmp_path / "run"
    flags = ["--run-dir", str(run_dir), "--image-size", str(SIZE), "--weights", str(path)]
    code = main(synthetic_argv("train", synthetic_data_dir, *flags))
    err = capsys.readouterr().err.strip()
    assert code != 0 and "does not fit ResNet50" in err and "\n" not in err
    assert not run_dir.exists()


def test_finetune_stages_beyond_the_backbone_is_a_user_error():
    with pytest.raises(ValueError, match="1-7 or 'all'"):
        TrainConfig(backbone="efficientnetv2b0", finetune_stages="8")


def test_tune_with_another_backbone_and_class_weights(synthetic_data_dir, tmp_path, monkeypatch):
    import csv

    from keras_geo import tuning

    seen = {}
    fit = tuning.GeoHyperModel.fit

    def spy(self, hp, model, *args, **kwargs):
        seen.update(backbone=model.name, class_weight=kwargs.get("class_weight"))
        return fit(self, hp, model, *args, **kwargs)

    run_dir = tmp_path / "run"
    argv = ["tune", "--dataset", "geoguessr/synthetic", "--data-dir", synthetic_data_dir]
    argv += ["--run-dir", str(run_dir), "--max-trials", "1", "--epochs", "1", "--phase", "frozen"]
    argv += ["--image-size", "32", "--weights", "none", "--max-examples", "48"]
    argv += ["--backbone", "vgg16", "--class-weight", "balanced"]
    monkeypatch.setattr(tuning.GeoHyperModel, "fit", spy)
    assert main(argv) == 0
    assert seen["backbone"] == "geo_vgg16"
    labels = datasets.split_labels("geoguessr/synthetic", "train", synthetic_data_dir)[:48]
    expected = phase.class_weights(TrainConfig(class_weight="balanced"), labels, 20)
    assert seen["class_weight"] == pytest.approx(expected)
    with open(run_dir / "tuning" / "trials.csv") as f:
        row = next(csv.DictReader(f))
    assert row["status"] == "COMPLETED" and 0 <= float(row["val_balanced_accuracy"]) <= 1
