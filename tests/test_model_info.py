"""What a model is (`keras_geo.model_info`): shown beside every guess."""

import json

from keras_geo import model_info, runs
from keras_geo.config import TrainConfig


def _run_dir(tmp_path, dataset, accuracy=0.5):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    TrainConfig(dataset=dataset, weights="none").to_json(run_dir / runs.CONFIG_FILE)
    metrics = {"accuracy": accuracy, "balanced_accuracy": 0.25, "top5_accuracy": 0.75}
    runs.metrics_path(run_dir, "test").parent.mkdir()
    runs.metrics_path(run_dir, "test").write_text(json.dumps({**metrics, "num_examples": 60}))
    return run_dir


def test_a_synthetic_run_says_so_with_its_accuracy(tmp_path):
    info = model_info.from_run(_run_dir(tmp_path, "geoguessr/synthetic", 0.65))
    assert info.synthetic
    summary = info.summary()
    assert "SYNTHETIC" in summary and "synthetic test top-1 65.0%" in summary
    assert info.to_json()["test"] == {
        "accuracy": 0.65,
        "balanced_accuracy": 0.25,
        "top5_accuracy": 0.75,
        "num_examples": 60,
    }


def test_a_real_run_names_its_data_and_a_bare_model_says_nothing_false(tmp_path):
    info = model_info.from_run(_run_dir(tmp_path, "geoguessr/top20", 0.471))
    assert not info.synthetic
    assert info.summary().endswith(
        "real screenshots (geoguessr/top20), test top-1 47.1% (balanced 25.0%)"
    )
    bare = model_info.ModelInfo(name="model.keras")
    assert bare.summary() == "model.keras: training data unknown"


def test_non_finite_metrics_are_dropped_so_json_stays_valid(tmp_path):
    run_dir = _run_dir(tmp_path, "geoguessr/top20", float("nan"))
    info = model_info.from_run(run_dir)
    assert "accuracy" not in info.test and "nan" not in json.dumps(info.to_json()).lower()


def test_an_export_record_round_trips():
    info = model_info.ModelInfo("a", "geoguessr/top20", {"accuracy": 0.5})
    again = model_info.from_export_record(info.record(), name="b")
    assert (again.name, again.dataset, again.test) == ("b", "geoguessr/top20", {"accuracy": 0.5})
    assert model_info.from_export_record(None, name="c") == model_info.ModelInfo("c")
