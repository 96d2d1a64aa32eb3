"""KerasTuner reads a keras-geo search as its own: directions, trial numbers, reloading.

A toy search (a dense model compiled with the project's metrics, 32 examples)
runs through `tuning.make_tuner` and `tuning.run_tuner`, as `keras-geo tune`
does; the reload snippet of docs/tuning.md then runs in a fresh process that imports
KerasTuner only.
"""

import ast
import contextlib
import csv
import io
import json
import pathlib
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
from tuning_helpers import ToyHyperModel

from keras_geo import model as geo_model
from keras_geo import search_space, tuning

CLASS_NAMES = ["France", "Japan"]
README = pathlib.Path(__file__).resolve().parents[1] / "docs" / "tuning.md"  # Was README.md.


def _project_metrics():
    return geo_model.training_metrics(2, CLASS_NAMES)


def toy_search(tuning_dir, max_trials=3, verbose=0):
    keras.utils.set_random_seed(0)  # The same scores every run (these have no tie).
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int64")
    tuner = tuning.make_tuner(
        ToyHyperModel(metrics=_project_metrics),
        str(tuning_dir),
        max_trials=max_trials,
        seed=0,
        overwrite=False,
    )
    tuning.run_tuner(tuner, x, y, validation_data=(x, y), epochs=2, verbose=verbose)


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    """`ROOT/runs/search/tuning`: a finished 3-trial search; yields ROOT and KerasTuner's output."""
    root = tmp_path_factory.mktemp("search")
    tuning_dir = root / "runs" / "search" / "tuning"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        toy_search(tuning_dir, verbose=1)
    return root, tuning_dir, out.getvalue()


def test_every_metric_is_recorded_with_its_direction(search):
    _, tuning_dir, _ = search
    states = [json.loads(p.read_text()) for p in tuning_dir.glob("search/trial_*/trial.json")]
    assert len(states) == 3
    for state in states:
        recorded = {
            name: history["direction"] for name, history in state["metrics"]["metrics"].items()
        }
        assert recorded == {name: search_space.direction(name) for name in recorded}
        for name in ("val_accuracy", "val_balanced_accuracy", "val_top5_accuracy"):
            assert recorded[name] == "max"
        assert recorded["val_mean_km"] == "min" and recorded["val_loss"] == "min"


def test_every_metric_a_run_logs_has_a_direction():
    names = ["loss", *(m.name for m in geo_model.training_metrics(20, CLASS_NAMES))]
    assert all(search_space.direction(f"val_{name}") for name in names)


def test_keras_tuner_still_guesses_min_for_our_metric_names():
    """Fails when KerasTuner guesses them right: `tuning.GeoOracle` is then not needed."""
    from keras_tuner.engine.metrics_tracking import infer_metric_direction

    # None: KerasTuner then records the metric as "min" (`MetricsTracker.register`).
    assert infer_metric_direction("val_balanced_accuracy") is None
    assert infer_metric_direction("val_top5_accuracy") is None
    assert infer_metric_direction("val_accuracy") == "max"  # A name it knows.


def test_trial_numbers_are_keras_tuners(search):
    _, tuning_dir, out = search
    theirs = re.findall(r"^Trial (\d+) Complete", out, re.MULTILINE)
    ours = re.findall(r"^Trial (\d+)/3 COMPLETED", out, re.MULTILINE)
    assert theirs == ours == ["1", "2", "3"]
    rows = (tuning_dir / search_space.TRIALS_FILE).read_text().splitlines()
    assert rows[0].startswith("trial,trial_id,")
    assert [row.split(",")[:2] for row in rows[1:]] == [["1", "0"], ["2", "1"], ["3", "2"]]
    assert [p.name for p in sorted(tuning_dir.glob("search/trial_*"))] == [
        "trial_0",
        "trial_1",
        "trial_2",
    ]


def readme_reload_snippet():
    """The Python block under docs/tuning.md's "Reload with KerasTuner alone"."""
    text = README.read_text()
    section = text[text.index("**Reload with KerasTuner alone") :]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_the_readme_reloads_a_search_with_keras_tuner_alone(search):
    root, tuning_dir, _ = search
    script = readme_reload_snippet() + (
        "\nimport sys\n"
        "assert not [m for m in sys.modules if m.startswith('keras_geo')], 'imported keras_geo'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    reloaded = ast.literal_eval(done.stdout.strip().splitlines()[-1])
    # KerasTuner's best is a trial with the best score (best.json's, unless tied:
    # on reload KerasTuner orders tied trials as the file system lists them).
    rows = list(csv.DictReader((tuning_dir / search_space.TRIALS_FILE).open()))
    top = max(float(row["val_accuracy"]) for row in rows)
    tied = [
        {name: _number(row[name]) for name in search_space.HYPERPARAMETERS}
        for row in rows
        if float(row["val_accuracy"]) == top
    ]
    assert reloaded in tied
    if len(tied) == 1:
        assert reloaded == json.loads((tuning_dir / search_space.BEST_FILE).read_text())


def _number(text):
    return int(text) if text.isdigit() else float(text)
