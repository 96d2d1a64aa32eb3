"""Tests of `keras_geo.tuning`, `keras_geo.tuning_report` and `keras-geo tune`."""

import csv
import json
import math

import keras
import keras_tuner
import numpy as np
import pytest
from tuning_helpers import ToyHyperModel

from keras_geo import runs, search_space, tuning, tuning_report
from keras_geo.cli import main as cli_main
from keras_geo.config import TrainConfig
from keras_geo.errors import UserError


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _assert_in_space(row):
    space = search_space.SPACE
    batch = space["batch_size"]
    batch_size = int(row["batch_size"])
    assert batch.low <= batch_size <= batch.high and (batch_size - batch.low) % batch.step == 0
    assert float(row["learning_rate"]) in space["learning_rate"].values
    assert float(row["weight_decay"]) in space["weight_decay"].values
    alphas = space["alpha"]
    alpha = float(row["alpha"])
    assert alphas.low <= alpha <= alphas.high
    assert math.isclose(alpha / alphas.step, round(alpha / alphas.step), abs_tol=1e-6)


# --- the search space -------------------------------------------------------


def test_search_space_defaults_are_the_authors_values():
    hp = keras_tuner.HyperParameters()
    assert search_space.declare(hp) == {
        "batch_size": 180,
        "learning_rate": 1e-3,
        "weight_decay": 1e-4,
        "alpha": 2.5,
    }
    assert len(search_space.SPACE["learning_rate"].values) == 7
    assert 0.0 in search_space.SPACE["weight_decay"].values
    assert {hp.name for hp in hp.space} == set(search_space.HYPERPARAMETERS)
    assert set(search_space.HYPERPARAMETERS) <= set(TrainConfig().to_dict())


def test_random_samples_stay_in_the_declared_ranges():
    hp = keras_tuner.HyperParameters()
    search_space.declare(hp)
    for seed in range(200):
        row = {p.name: p.random_sample(seed) for p in hp.space}
        _assert_in_space(row)


def test_hypermodel_rejects_bad_arguments():
    with pytest.raises(UserError, match="phase"):
        tuning.GeoHyperModel(TrainConfig(), ["A", "B"], phase="later")


def test_nan_loss_fails_the_trial():
    callback = tuning.FailOnNaNLoss()
    callback.on_epoch_end(0, {"loss": 1.5})
    with pytest.raises(keras_tuner.errors.FailedTrialError, match="nan in epoch 2"):
        callback.on_epoch_end(1, {"loss": float("nan")})


# --- the report ---------------------------------------------------------------


def test_summarize_error_keeps_the_exception_and_its_reason():
    trace = (
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        "    f()\n"
        "tensorflow.python.framework.errors_impl.ResourceExhaustedError: Graph "
        "execution error:\n\nDetected at node Conv2D defined at (most recent call "
        'last):\n  File "y.py", line 2\nOOM when allocating tensor [256,2048]\n'
        "\t [[{{node Conv2D}}]]\n"
    )
    assert tuning_report.summarize_error(trace) == (
        "ResourceExhaustedError: OOM when allocating tensor [256,2048]"
    )
    assert tuning_report.summarize_error("Traceback\n  f()\nValueError: bad") == ("ValueError: bad")
    assert tuning_report.summarize_error(None) is None
    assert len(tuning_report.summarize_error("ValueError: " + "x" * 999)) == 300


def test_describe_error_takes_the_type_from_the_exception_and_skips_tensorflows_preamble():
    import tensorflow as tf

    error = tf.errors.ResourceExhaustedError(
        None,
        None,
        "Graph execution error:\n\nDetected at node Conv2D defined at (most recent call "
        'last):\n  File "y.py", line 2\nOOM when allocating tensor [256,2048]\n'
        "\t [[{{node Conv2D}}]]\n",
    )
    assert tuning_report.describe_error(error) == (
        "ResourceExhaustedError: OOM when allocating tensor [256,2048]"
    )
    assert tuning_report.describe_error(ValueError("bad\nmore")) == "ValueError: bad"
    assert tuning_report.describe_error(RuntimeError()) == "RuntimeError"


def test_progress_line_names_trial_values_score_and_best():
    line = tuning_report.progress_line(
        trial_id="2",
        total=30,
        values=dict(search_space.DEFAULTS),
        status="COMPLETED",
        score=0.41234,
        best_score=0.45,
        best_id="01",
        wall_time_s=95.2,
    )
    assert line.startswith("Trial 3/30 COMPLETED batch_size=180 learning_rate=0.001")
    assert "val_accuracy=0.4123" in line and "best 0.4500 (Trial 2)" in line
    values = dict(search_space.DEFAULTS)
    line = tuning_report.progress_line(
        trial_id="0", total=1, values=values, status="COMPLETED", score=0.25,
        best_score=0.25, best_id="0", wall_time_s=1.0, objective="val_balanced_accuracy",
    )  # fmt: skip
    assert "-> val_balanced_accuracy=0.2500 |" in line


# --- a toy search: fast, exercises GeoTuner and the report -----------------------


def _toy_search(tmp_path, hypermodel, max_trials, max_failures=3):
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    tuner = tuning.make_tuner(
        hypermodel,
        str(tmp_path / "tuning"),
        max_trials=max_trials,
        seed=0,
        overwrite=False,
        max_failures=max_failures,
    )
    return tuning.run_tuner(tuner, x, y, validation_data=(x, y), epochs=1, verbose=0)


def test_failed_trial_is_recorded_and_the_search_goes_on(tmp_path, capsys):
    def fail_second(values):
        if len(hypermodel.fitted) == 2:
            raise RuntimeError("OOM when allocating tensor of shape [256, 2048]")

    hypermodel = ToyHyperModel(fail_second)
    best = _toy_search(tmp_path, hypermodel, max_trials=3)

    rows = _read_csv(tmp_path / "tuning" / "trials.csv")
    assert [r["status"] for r in rows] == ["COMPLETED", "FAILED", "COMPLETED"]
    assert "OOM when allocating" in rows[1]["message"]
    for row in rows:
        _assert_in_space(row)
    done = [r for r in rows if r["status"] == "COMPLETED"]
    assert all(0 <= float(r["val_accuracy"]) <= 1 for r in done)
    assert all(r["best_epoch"] == "1" and float(r["wall_time_s"]) >= 0 for r in done)
    assert best == json.loads((tmp_path / "tuning" / "best.json").read_text())
    assert sorted(best) == sorted(search_space.HYPERPARAMETERS)
    config = TrainConfig().replace(**best)  # What `train --hparams` does.
    assert config.batch_size == best["batch_size"] and config.alpha == best["alpha"]
    assert (tmp_path / "tuning" / "search.png").stat().st_size > 0
    # The first trial is sampled like the others, not stuck at the defaults.
    assert hypermodel.fitted[0] != search_space.DEFAULTS
    out = capsys.readouterr().out
    assert "Trial 2/3 FAILED" in out and "OOM when allocating" in out
    assert "Trial 3/3 COMPLETED" in out and "best " in out


def test_all_trials_failing_raises_a_clear_error(tmp_path):
    def always(values):
        raise ValueError("loss exploded")

    with pytest.raises(
        UserError, match="3 trials failed in a row .last: ValueError: loss exploded"
    ):
        _toy_search(tmp_path / "a", ToyHyperModel(always), max_trials=5)
    rows = _read_csv(tmp_path / "a" / "tuning" / "trials.csv")
    assert len(rows) == 3 and all(r["status"] == "FAILED" for r in rows)
    assert not (tmp_path / "a" / "tuning" / "best.json").exists()

    with pytest.raises(UserError, match="no trial completed"):
        _toy_search(tmp_path / "b", ToyHyperModel(always), max_trials=2, max_failures=5)


def test_resume_runs_only_the_missing_and_the_interrupted_trials(tmp_path):
    def interrupt_second(values):
        if len(hypermodel.fitted) == 2:
            raise KeyboardInterrupt

    hypermodel = ToyHyperModel(interrupt_second)
    with pytest.raises(KeyboardInterrupt):
        _toy_search(tmp_path, hypermodel, max_trials=3)
    rows = _read_csv(tmp_path / "tuning" / "trials.csv")
    assert [r["status"] for r in rows] == ["COMPLETED"]

    resumed = ToyHyperModel()
    _toy_search(tmp_path, resumed, max_trials=3)
    # Trial 0 is not run again; the interrupted trial 1 reruns with its values.
    assert resumed.fitted == hypermodel.fitted[1:2] + resumed.fitted[1:]
    assert len(resumed.fitted) == 2
    rows = _read_csv(tmp_path / "tuning" / "trials.csv")
    assert [r["status"] for r in rows] == ["COMPLETED"] * 3

    again = ToyHyperModel()
    _toy_search(tmp_path, again, max_trials=3)
    assert again.fitted == []


def test_overwrite_starts_afresh_and_removes_the_old_report(tmp_path):
    _toy_search(tmp_path, ToyHyperModel(), max_trials=1)
    tuning_dir = tmp_path / "tuning"
    assert (tuning_dir / "best.json").is_file()
    tuning_report.remove_reports(str(tuning_dir))
    assert not (tuning_dir / "best.json").exists()
    again = ToyHyperModel()
    tuner = tuning.make_tuner(again, str(tuning_dir), max_trials=1, seed=0, overwrite=True)
    assert tuner.remaining_trials == 1  # The finished trial is forgotten.


def test_same_seed_same_trials(tmp_path):
    first, second = ToyHyperModel(), ToyHyperModel()
    _toy_search(tmp_path / "a", first, max_trials=2)
    _toy_search(tmp_path / "b", second, max_trials=2)
    assert first.fitted == second.fitted
    assert len({json.dumps(v, sort_keys=True) for v in first.fitted}) == 2


# --- the real search on synthetic data --------------------------------------------


def _cli(*args):
    return cli_main.main(["tune", *map(str, args)])


def _tune_args(data_dir, run_dir, max_trials):
    return (
        "--dataset", "geoguessr/synthetic", "--data-dir", data_dir,
        "--run-dir", run_dir, "--max-trials", max_trials, "--epochs", 1,
        "--image-size", 32, "--weights", "none", "--max-examples", 48,
    )  # fmt: skip


def test_tune_runs_resumes_and_best_json_feeds_train(synthetic_data_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert _cli(*_tune_args(synthetic_data_dir, run_dir, 1)) == 0
    tuning_dir = run_dir / "tuning"
    first = tuning_dir / "search" / "trial_0" / search_space.SIDE_CAR
    stamp = first.stat().st_mtime_ns
    assert "Trial 1/1 COMPLETED" in capsys.readouterr().out

    # The same command again: the finished trial does not run again.
    assert _cli(*_tune_args(synthetic_data_dir, run_dir, 1)) == 0
    assert first.stat().st_mtime_ns == stamp
    assert "Trial 1/1" not in capsys.readouterr().out

    rows = _read_csv(tuning_dir / "trials.csv")
    assert [(r["trial"], r["trial_id"]) for r in rows] == [("1", "0")]
    row = rows[0]
    assert row["status"] == "COMPLETED", row["message"]
    _assert_in_space(row)
    assert 0.0 <= float(row["val_accuracy"]) <= 1.0
    assert row["best_epoch"] == "1" and float(row["val_mean_km"]) >= 0
    assert (tuning_dir / "search.png").is_file()
    state = json.loads((tuning_dir / "search" / "trial_0" / "trial.json").read_text())
    directions = {k: v["direction"] for k, v in state["metrics"]["metrics"].items()}
    assert directions["val_balanced_accuracy"] == directions["val_top5_accuracy"] == "max"
    assert directions["val_mean_km"] == directions["val_loss"] == "min"

    # Resuming with other fixed settings is refused in one line, no training.
    args = list(_tune_args(synthetic_data_dir, run_dir, 1))
    args[args.index("--epochs") + 1] = 3
    assert _cli(*args) == 2
    assert "--overwrite" in capsys.readouterr().err

    # best.json is what `keras-geo train --hparams` reads.
    from keras_geo.cli import train as cli_train

    best_json = tuning_dir / "best.json"
    parser = cli_main.build_parser()
    argv = ["train", "--run-dir", str(run_dir), "--hparams", str(best_json)]
    config = cli_train.resolve_config(parser.parse_args(argv))
    best = json.loads(best_json.read_text())
    assert {name: getattr(config, name) for name in best} == best
    assert config == TrainConfig().replace(**best)


def test_overwrite_keeps_the_new_settings_so_a_changed_resume_is_refused(
    synthetic_data_dir, tmp_path, capsys
):
    run_dir = tmp_path / "run"
    stored = run_dir / "tuning" / search_space.CONFIG_FILE
    assert _cli(*_tune_args(synthetic_data_dir, run_dir, 1)) == 0
    args = list(_tune_args(synthetic_data_dir, run_dir, 1))
    args[args.index("--image-size") + 1] = 48
    assert _cli(*args, "--overwrite") == 0
    assert json.loads(stored.read_text())["image_size"] == 48  # Was deleted after writing.
    capsys.readouterr()
    args[args.index("--epochs") + 1] = 2
    assert _cli(*args) == 2
    err = capsys.readouterr().err
    assert "epochs: 1 -> 2" in err and "--overwrite" in err


def test_a_search_that_failed_before_any_trial_ended_takes_the_corrected_command(
    synthetic_data_dir, tmp_path, capsys, monkeypatch
):
    """As `train` forgives a run dir in which nothing was trained: no `--overwrite` needed."""

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: no network")

    run_dir = tmp_path / "run"
    args = list(_tune_args(synthetic_data_dir, run_dir, 1))
    args[args.index("--weights") + 1] = "imagenet"
    with monkeypatch.context() as patch:
        patch.setattr(keras.utils, "get_file", offline)
        assert _cli(*args) == 2
    assert "--weights none" in capsys.readouterr().err

    assert _cli(*_tune_args(synthetic_data_dir, run_dir, 1)) == 0  # --weights none
    assert "Trial 1/1 COMPLETED" in capsys.readouterr().out
    stored = json.loads((run_dir / "tuning" / search_space.CONFIG_FILE).read_text())
    assert stored["weights"] == "none"
    assert tuning.trials_ended(run_dir / "tuning")


def test_tune_takes_experiment_and_hparams_as_train_does(tmp_path, capsys, monkeypatch):
    from keras_geo import experiments
    from keras_geo.cli import tune as cli_tune

    hparams = tmp_path / "h.json"
    hparams.write_text(json.dumps({"image_size": 48, "loss": "crossentropy"}))
    argv = ["tune", "--run-dir", str(tmp_path / "run"), "--experiment", "demo"]
    argv += ["--hparams", str(hparams), "--image-size", "40"]
    config = cli_tune.config_from_args(cli_main.build_parser().parse_args(argv))
    # experiment < hparams < flags, as `train`; the tuned fields stay each trial's.
    assert config == experiments.get("demo").replace(image_size=40, loss="crossentropy")

    seen = {}
    monkeypatch.setattr(tuning, "search", lambda config, run_dir, **kw: seen.update(kw))
    assert cli_main.main([*argv, "--phase", "finetune"]) == 0
    assert "finetune_learning_rate=0.003 fixes the fine-tuning rate" in capsys.readouterr().err
    assert cli_main.main([*argv, "--phase", "frozen"]) == 0
    assert capsys.readouterr().err == "" and seen["phase"] == "frozen"


@pytest.mark.slow
def test_best_json_trains(synthetic_data_dir, tmp_path, tiny_config, tiny_runtime):
    from keras_geo import training

    run_dir = tmp_path / "run"
    assert _cli(*_tune_args(synthetic_data_dir, run_dir, 1)) == 0
    best = json.loads((run_dir / "tuning" / "best.json").read_text())
    config = tiny_config(epochs_frozen=0, batch_size=180).replace(**best)
    model = training.train(config, run_dir, runtime=tiny_runtime, verbose=0)
    assert model.output_shape == (None, 20)


def test_frozen_phase_trials_share_one_feature_cache(synthetic_data_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert _cli(*_tune_args(synthetic_data_dir, run_dir, 2), "--phase", "frozen") == 0
    assert capsys.readouterr().out.count(" COMPLETED ") == 2
    cache = sorted(p.name for p in (run_dir / "tuning" / "features").iterdir())
    assert len(cache) == 2  # train + validation, computed by the first trial only.
    assert [c.split("-")[1] for c in cache] == ["train", "validation"]


@pytest.mark.parametrize(
    "flags, message",
    [
        (("--dataset", "mnist"), "geoguessr/<config>"),
        (("--image-size", "16"), "image_size"),
        (("--max-trials", "0"), "max_trials"),
        (("--seed", "-1"), "seed"),
        (("--weights", "/no/such/weights.h5"), "weights file not found: /no/such/weights.h5"),
    ],
)
def test_tune_bad_input_is_a_one_line_error(tmp_path, capsys, flags, message):
    assert _cli("--run-dir", tmp_path, *flags) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_an_unknown_objective_is_a_one_line_error_with_the_choices(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _cli("--run-dir", tmp_path, "--objective", "val_loss")
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert "'val_loss' (choose from 'val_accuracy', 'val_balanced_accuracy')" in err
    with pytest.raises(UserError, match="`objective` must be one of val_accuracy, val_bal"):
        tuning.search(TrainConfig(), tmp_path, objective="val_loss")
    assert not (tmp_path / "tuning").exists()


def test_tune_help_lists_the_distributed_commands(capsys):
    with pytest.raises(SystemExit):
        _cli("--help")
    out = capsys.readouterr().out
    assert "KERASTUNER_TUNER_ID=chief" in out and "KERASTUNER_TUNER_ID=tuner1" in out


# --- one compile path: a trial compiles what a training run compiles ---------------


def _compiled(model):
    """What `compile` decided: loss and its parameters, optimizer, trainables, dtype."""
    optimizer = model.optimizer
    return {
        "loss": type(model.loss).__name__,
        "loss_config": model.loss.get_config(),
        "optimizer": type(optimizer).__name__,
        "learning_rate": optimizer.get_config()["learning_rate"],  # a float or a schedule
        "weight_decay": float(optimizer.weight_decay),
        "trainable": [w.path for w in model.trainable_weights],
        "policy": model.dtype_policy.name,
        "backbone_policy": model.get_layer("backbone").dtype_policy.name,
    }


def test_a_trial_compiles_what_training_compiles(tmp_path, tiny_config, tiny_runtime):
    """Loss, optimizer, trainables, dtype and the learning-rate schedule (warm-up included)."""
    from keras_geo import datasets, training

    values = {"batch_size": 96, "learning_rate": 3e-4, "weight_decay": 0.0, "alpha": 0.5}
    fixed = tiny_config(
        epochs_frozen=0,
        epochs_finetune=3,
        lr_schedule="cosine",
        warmup_epochs=1,
        loss="crossentropy",
        tau_km=500.0,  # cross-entropy on smoothed labels: HaversineCrossEntropy(alpha=0)
    )
    seen = {}

    class ProbeAndStop(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.update(_compiled(self.model))
            self.model.stop_training = True  # One step: only what was compiled matters.

    run_dir = tmp_path / "run"
    probe = dict(runtime=tiny_runtime, callbacks=[ProbeAndStop()], verbose=0)
    training.train(fixed.replace(**values), run_dir, **probe)

    train = datasets.load_split(fixed.dataset, "train", data_dir=tiny_runtime.data_dir)
    examples = int(train.cardinality())
    hypermodel = tuning.GeoHyperModel(
        fixed, runs.read_class_names(run_dir), train_examples=examples
    )
    hp = keras_tuner.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    hp.values.update(values)
    trial = _compiled(hypermodel.build(hp))
    assert trial == seen
    assert trial["loss"] == "HaversineCrossEntropy" and trial["loss_config"]["alpha"] == 0.0
    assert trial["loss_config"]["tau_km"] == 500.0
    assert any("conv5" in path for path in trial["trainable"])
    steps = math.ceil(examples / 96)  # 900 synthetic training images: 10 steps an epoch
    assert trial["learning_rate"]["class_name"] == "CosineDecay"
    schedule = trial["learning_rate"]["config"]
    assert schedule["warmup_steps"] == steps and schedule["decay_steps"] == 2 * steps
    assert schedule["warmup_target"] == pytest.approx(3e-4) and schedule["alpha"] == 0.0


def test_a_schedule_without_the_epoch_size_is_refused():
    config = TrainConfig(lr_schedule="cosine")
    with pytest.raises(UserError, match="`train_examples` must be > 0"):
        tuning.GeoHyperModel(config, ["A", "B"])
    tuning.GeoHyperModel(TrainConfig(), ["A", "B"])  # A constant rate needs no steps.


def test_tune_maximises_balanced_accuracy_with_a_cosine_schedule(
    synthetic_data_dir, tmp_path, monkeypatch, capsys
):
    from keras_geo import phase as phase_lib

    built = []
    build = phase_lib.build_phase_model

    def spy(config, phase, class_names, **kwargs):
        model = build(config, phase, class_names, **kwargs)
        built.append((config.batch_size, model.optimizer.get_config()["learning_rate"]))
        return model

    monkeypatch.setattr(phase_lib, "build_phase_model", spy)
    run_dir = tmp_path / "run"
    args = list(_tune_args(synthetic_data_dir, run_dir, 1))
    args[args.index("--epochs") + 1] = 2
    args += ["--lr-schedule", "cosine", "--warmup-epochs", 1]
    assert _cli(*args, "--objective", "val_balanced_accuracy") == 0
    out = capsys.readouterr().out
    assert "COMPLETED" in out and "-> val_balanced_accuracy=" in out
    assert "best hyperparameters by val_balanced_accuracy" in out

    # Each trial compiles the schedule of its own batch size: 48 examples, 2 epochs.
    [(batch_size, learning_rate)] = built
    steps = math.ceil(48 / batch_size)
    assert learning_rate["class_name"] == "CosineDecay"
    assert learning_rate["config"]["warmup_steps"] == steps
    assert learning_rate["config"]["decay_steps"] == steps

    # KerasTuner scored the trial by val_balanced_accuracy: it was in the epoch logs.
    tuning_dir = run_dir / "tuning"
    state = json.loads((tuning_dir / "search" / "trial_0" / "trial.json").read_text())
    assert "val_balanced_accuracy" in state["metrics"]["metrics"]
    [row] = _read_csv(tuning_dir / "trials.csv")
    assert row["status"] == "COMPLETED", row["message"]
    assert float(row["val_balanced_accuracy"]) == pytest.approx(state["score"])
    assert int(row["best_epoch"]) == state["best_step"] + 1
    assert json.loads((tuning_dir / "best.json").read_text()) == {
        name: float(row[name]) if name != "batch_size" else int(row[name])
        for name in search_space.HYPERPARAMETERS
    }
    stored = json.loads((tuning_dir / search_space.CONFIG_FILE).read_text())
    assert stored["objective"] == "val_balanced_accuracy" and stored["lr_schedule"] == "cosine"

    # Resuming with the other objective is refused in one line naming both.
    assert _cli(*args) == 2
    err = capsys.readouterr().err
    assert "objective: 'val_balanced_accuracy' -> 'val_accuracy'" in err
    assert err.count("\n") == 1


def test_the_objective_picks_the_best_trial():
    rows = [
        {"trial_id": "0", "status": "COMPLETED", "val_accuracy": 0.6, "val_balanced_accuracy": 0.2},
        {"trial_id": "1", "status": "COMPLETED", "val_accuracy": 0.5, "val_balanced_accuracy": 0.4},
        {"trial_id": "2", "status": "FAILED", "val_accuracy": None, "val_balanced_accuracy": None},
    ]
    assert tuning_report.best_trial(rows)["trial_id"] == "0"  # The paper's val_accuracy.
    assert tuning_report.best_trial(rows, "val_balanced_accuracy")["trial_id"] == "1"
    assert search_space.OBJECTIVE == "val_accuracy"
    assert set(search_space.OBJECTIVES) <= set(search_space.METRICS)
    assert set(search_space.METRICS) <= set(tuning_report.COLUMNS)


def test_tune_loss_crossentropy_tunes_plain_cross_entropy(
    synthetic_data_dir, tmp_path, monkeypatch
):
    from keras_geo import phase as phase_lib

    losses = []
    build = phase_lib.build_phase_model

    def spy(config, phase, class_names, **kwargs):
        model = build(config, phase, class_names, **kwargs)
        losses.append(model.loss)
        return model

    monkeypatch.setattr(phase_lib, "build_phase_model", spy)
    run_dir = tmp_path / "run"
    args = list(_tune_args(synthetic_data_dir, run_dir, 1))
    args[args.index("--max-examples") + 1] = 16
    assert _cli(*args, "--loss", "crossentropy") == 0
    assert [type(loss) for loss in losses] == [keras.losses.SparseCategoricalCrossentropy]
    stored = json.loads((run_dir / "tuning" / search_space.CONFIG_FILE).read_text())
    assert stored["loss"] == "crossentropy" and "alpha" not in stored


def test_geotuner_builds_once_per_trial_and_writes_no_checkpoint(tmp_path):
    class Counting(ToyHyperModel):
        builds = 0

        def build(self, hp):
            Counting.builds += 1
            return super().build(hp)

    _toy_search(tmp_path, Counting(), max_trials=2)
    assert Counting.builds == 2  # none to populate the space
    trial_dirs = sorted((tmp_path / "tuning" / "search").glob("trial_*"))
    assert len(trial_dirs) == 2
    assert not [p for d in trial_dirs for p in d.rglob("*.weights.h5")]
    assert all((d / search_space.SIDE_CAR).is_file() for d in trial_dirs)


def test_search_space_docstring_table_matches_the_space():
    import re

    rows = [line for line in search_space.__doc__.splitlines() if line.startswith("| ")][1:]
    table = {row.split("|")[1].strip(): row.split("|")[3] for row in rows}
    assert list(table) == list(search_space.HYPERPARAMETERS)
    for name, spec in search_space.SPACE.items():
        numbers = [float(n) for n in re.findall(r"\d[\d.]*(?:e-?\d+)?", table[name])]
        starred = float(re.search(r"([\d.e-]+)\*", table[name]).group(1))
        assert starred == search_space.DEFAULTS[name], name
        if isinstance(spec, search_space.Choice):
            assert numbers == list(spec.values), name
        else:
            assert (numbers[0], numbers[-1]) == search_space.bounds(name), name
            assert numbers[1] - numbers[0] == spec.step, name


def test_resume_check_compares_every_fixed_field_and_reads_older_files(tmp_path):
    config = TrainConfig(dataset="geoguessr/synthetic", image_size=32)
    settings = tuning.search_settings(config, phase="finetune", epochs=1, max_examples=None)
    assert "loss" in settings and not set(search_space.HYPERPARAMETERS) & set(settings)
    assert not {"data_dir", "strategy", "mixed_precision"} & set(settings)  # The runtime's.
    # Files of before the Runtime split held its fields too, which no resume compares.
    older = {k: v for k, v in settings.items() if k != "loss"}
    older.update(data_dir="/old", data_service=None, strategy="mirrored", mixed_precision=True)
    ended = tmp_path / search_space.PROJECT_NAME / "trial_0" / search_space.SIDE_CAR
    ended.parent.mkdir(parents=True)
    ended.write_text("{}")  # A trial ended: other settings are refused.
    (tmp_path / search_space.CONFIG_FILE).write_text(json.dumps(older))
    tuning._check_search_config(str(tmp_path), settings, overwrite=False, role=None)
    changed = tuning.search_settings(
        config.replace(loss="crossentropy"), phase="finetune", epochs=1, max_examples=None
    )
    with pytest.raises(UserError, match="loss: 'haversine' -> 'crossentropy'"):
        tuning._check_search_config(str(tmp_path), changed, overwrite=False, role=None)
    # A file from before `objective` existed: its search maximised val_accuracy.
    assert settings["objective"] == "val_accuracy"
    (tmp_path / search_space.CONFIG_FILE).write_text(json.dumps(older))
    tuning._check_search_config(str(tmp_path), settings, overwrite=False, role=None)
    other = {**settings, "objective": "val_balanced_accuracy"}
    with pytest.raises(UserError, match="objective: 'val_accuracy' -> 'val_balanced_accuracy'"):
        tuning._check_search_config(str(tmp_path), other, overwrite=False, role=None)
