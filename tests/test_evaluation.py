"""Evaluation metrics by hand, the figures, and `evaluate` on a run directory."""

import json

import numpy as np
import pytest

from keras_geo import countries, evaluation, plots, runs

PNG_MAGIC = b"\x89PNG"


def test_compute_metrics_by_hand():
    names = ["France", "Germany", "Japan"]
    labels = [0, 0, 1, 2]
    probabilities = [
        [0.7, 0.2, 0.1],  # France, right
        [0.3, 0.6, 0.1],  # France predicted Germany
        [0.1, 0.8, 0.1],  # Germany, right
        [0.5, 0.1, 0.4],  # Japan predicted France
    ]
    metrics = evaluation.compute_metrics(labels, probabilities, names)
    distances = countries.distance_matrix_km(names)
    errors = np.array([0.0, distances[0, 1], 0.0, distances[2, 0]])
    assert metrics["num_examples"] == 4 and metrics["num_classes"] == 3
    assert metrics["accuracy"] == 0.5
    assert metrics["top5_accuracy"] == 1.0  # top-k with k = min(5, classes)
    assert metrics["mean_km"] == pytest.approx(errors.mean())
    assert metrics["median_km"] == pytest.approx(np.median(errors))
    assert metrics["geoguessr_score"] == pytest.approx(np.mean(5000 * np.exp(-errors / 1492.7)))
    assert metrics["majority_class"] == "France"
    assert metrics["majority_class_accuracy"] == 0.5
    assert metrics["chance_accuracy"] == pytest.approx(1 / 3)
    assert metrics["per_country"]["France"] == {
        "precision": 0.5,
        "recall": 0.5,
        "support": 2,
    }
    assert metrics["per_country"]["Germany"] == {
        "precision": 0.5,
        "recall": 1.0,
        "support": 1,
    }
    assert metrics["per_country"]["Japan"] == {
        "precision": 0.0,
        "recall": 0.0,
        "support": 1,
    }
    assert metrics["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]
    json.dumps(metrics)  # JSON-serialisable, no NaN


def test_top5_accuracy_counts_the_five_best():
    names = ["Argentina", "Brazil", "Canada", "France", "Japan", "Spain", "Sweden"]
    probabilities = np.tile(np.linspace(0.25, 0.05, 7), (2, 1))  # order 0..6
    metrics = evaluation.compute_metrics([4, 5], probabilities, names)
    assert metrics["top5_accuracy"] == 0.5
    assert metrics["accuracy"] == 0.0


def test_plots_write_pngs(tmp_path):
    names = ["France", "Germany", "Japan"]
    rows = [
        {
            "epoch": 0.0,
            "accuracy": 0.3,
            "loss": 2.0,
            "val_accuracy": 0.2,
            "val_loss": 2.1,
        },
        {
            "epoch": 1.0,
            "accuracy": 0.5,
            "loss": 1.5,
            "val_accuracy": 0.4,
            "val_loss": 1.7,
        },
    ]
    paths = [
        plots.training_curves({"frozen": rows, "finetune": rows[:1]}, tmp_path / "c.png"),
        plots.confusion_matrix([[2, 1, 0], [0, 3, 0], [1, 0, 0]], names, tmp_path / "m.png"),
        plots.per_country_accuracy([2 / 3, 1.0, 0.0], [3, 3, 1], names, tmp_path / "a.png"),
    ]
    for path in paths:
        assert path.read_bytes()[:4] == PNG_MAGIC
    assert plots.training_curves({"frozen": []}, tmp_path / "none.png") is None


@pytest.fixture(scope="module")
def untrained_run(synthetic_data_dir, tiny_config, tiny_runtime, tmp_path_factory):
    """A hand-made run directory: untrained 32 px model, a fake history."""
    from keras_geo import datasets
    from keras_geo.model import build_model

    run_dir = tmp_path_factory.mktemp("run")
    config = tiny_config(batch_size=32, epochs_frozen=10, epochs_finetune=10)
    runs.prepare_run_dir(config, run_dir, runtime=tiny_runtime)
    names = datasets.class_names(config.dataset, data_dir=synthetic_data_dir)
    runs.write_class_names(run_dir, names)
    runs.history_path(run_dir, "frozen").parent.mkdir()
    runs.history_path(run_dir, "frozen").write_text(
        "epoch,accuracy,loss,val_accuracy,val_loss\n0,0.1,3.0,0.1,3.1\n1,0.2,2.5,0.1,2.9\n"
    )
    model = build_model(len(names), image_size=32, weights=None)
    runs.save_model(model, run_dir / runs.MODEL_FILE, names, config)
    return run_dir


def test_evaluate_writes_metrics_and_figures(untrained_run):
    metrics = evaluation.evaluate(untrained_run, "validation", verbose=0)
    written = json.loads(runs.metrics_path(untrained_run, "validation").read_text())
    assert written == metrics
    for key in (
        "accuracy",
        "top5_accuracy",
        "mean_km",
        "median_km",
        "geoguessr_score",
        "num_examples",
        "per_country",
        "majority_class_accuracy",
    ):
        assert key in metrics
    assert metrics["num_examples"] == sum(row["support"] for row in metrics["per_country"].values())
    assert len(metrics["per_country"]) == 20
    assert 0.0 <= metrics["accuracy"] <= metrics["top5_accuracy"] <= 1.0
    for name in (
        "confusion_matrix_validation.png",
        "per_country_accuracy_validation.png",
        "training_curves.png",
    ):
        assert (runs.plots_dir(untrained_run) / name).read_bytes()[:4] == PNG_MAGIC


def test_evaluate_cli_prints_where_things_are(untrained_run, capsys):
    from keras_geo.cli import main as cli_main

    code = cli_main.main(["evaluate", "--run-dir", str(untrained_run), "--split", "test"])
    out = capsys.readouterr().out
    assert code == 0
    assert str(runs.metrics_path(untrained_run, "test")) in out
    assert "accuracy" in out and "majority class" in out
