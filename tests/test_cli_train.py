"""`keras-geo train / evaluate / demo`: config precedence and bad input.

Bad input must end with exit code 2 and one line on stderr, no traceback.
"""

import json

import pytest
from train_helpers import synthetic_argv

from keras_geo.cli import main as cli_main
from keras_geo.cli import train as cli_train
from keras_geo.config import Runtime, TrainConfig
from keras_geo.errors import UserError

TINY = ["--weights", "none", "--image-size", "32", "--batch-size", "16"]


def _fails(capsys, argv, match):
    """Runs the CLI in-process; asserts exit 2 and one stderr line matching."""
    code = cli_main.main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("keras-geo: error:")
    assert "Traceback" not in err
    assert match in err, err
    return err


def _resolve(argv):
    args = cli_main.build_parser().parse_args(["train", *argv])
    return cli_train.resolve_config(args)


def test_precedence_experiment_then_hparams_then_flags(tmp_path):
    hparams = tmp_path / "best.json"
    hparams.write_text(json.dumps({"batch_size": 7, "alpha": 1.0, "weight_decay": 0}))
    config = _resolve(
        ["--run-dir", str(tmp_path / "run"), "--experiment", "demo"]
        + ["--hparams", str(hparams), "--alpha", "0.5", "--no-flip"]
    )
    assert config.dataset == "geoguessr/synthetic"  # from the experiment
    assert config.batch_size == 7 and config.weight_decay == 0.0  # from hparams
    assert config.alpha == 0.5 and config.flip is False  # explicit flags win


def test_unset_flags_keep_defaults_and_stored_config_is_resumed(tmp_path):
    assert _resolve(["--run-dir", str(tmp_path / "new")]) == TrainConfig()
    stored = TrainConfig(dataset="geoguessr/synthetic", image_size=48, weights="none")
    (tmp_path / "old").mkdir()
    stored.to_json(tmp_path / "old" / "config.json")
    assert _resolve(["--run-dir", str(tmp_path / "old")]) == stored
    assert _resolve(["--run-dir", str(tmp_path / "old"), "--seed", "3"]).seed == 3


def test_a_flat_config_json_of_before_the_split_is_resumed_with_its_runtime(tmp_path):
    from test_config import FLAT_CONFIG_JSON

    (tmp_path / "config.json").write_text(json.dumps(FLAT_CONFIG_JSON))
    args = cli_main.build_parser().parse_args(["train", "--run-dir", str(tmp_path)])
    config, runtime = cli_train.resolve(args)
    assert config.backbone == "efficientnetv2b0" and config.epochs_finetune == 25
    assert runtime == Runtime(data_dir="/work/data")
    argv = ["train", "--run-dir", str(tmp_path), "--data-dir", "/d", "--strategy", "mirrored"]
    _, runtime = cli_train.resolve(cli_main.build_parser().parse_args(argv))
    assert runtime == Runtime(data_dir="/d", strategy="mirrored")


def test_hparams_may_set_runtime_fields(tmp_path):
    hparams = _write(tmp_path / "h.json", '{"alpha": 1.0, "data_dir": "/d"}')
    args = cli_main.build_parser().parse_args(
        ["train", "--run-dir", str(tmp_path / "run"), "--hparams", str(hparams)]
    )
    config, runtime = cli_train.resolve(args)
    assert config.alpha == 1.0 and runtime == Runtime(data_dir="/d")


def test_flags_cover_every_config_field():
    args = cli_main.build_parser().parse_args(["train", "--run-dir", "x"])
    fields = set(TrainConfig().to_dict())
    assert fields <= set(vars(args)), fields - set(vars(args))


@pytest.mark.parametrize(
    "content, match",
    [
        (None, "not found"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"batch_sise": 3}', "batch_sise"),
        ('{"batch_size": "big"}', "batch_size"),
        ('{"flip": 1}', "flip"),
        ('{"tau_km": "far"}', "tau_km"),
    ],
)
def test_bad_hparams_file(tmp_path, capsys, content, match):
    path = tmp_path / "hparams.json"
    if content is not None:
        path.write_text(content)
    _fails(
        capsys,
        ["train", "--run-dir", str(tmp_path / "r"), "--hparams", str(path)],
        match,
    )


def test_hparams_integral_floats_are_accepted(tmp_path):
    path = tmp_path / "best.json"
    path.write_text('{"batch_size": 64.0, "learning_rate": 1}')
    values = cli_train.read_hparams(path)
    assert values == {"batch_size": 64, "learning_rate": 1}
    with pytest.raises(UserError, match="batch_size"):
        cli_train.read_hparams(_write(tmp_path / "b.json", '{"batch_size": 6.5}'))


def _write(path, text):
    path.write_text(text)
    return path


def test_unknown_experiment(tmp_path, capsys):
    _fails(capsys, ["train", "--run-dir", str(tmp_path), "--experiment", "nope"], "demo")


def test_image_size_below_resnet_minimum(tmp_path, capsys):
    _fails(capsys, ["train", "--run-dir", str(tmp_path), "--image-size", "16"], "32")


def test_dataset_never_built_names_the_build_command(tmp_path, capsys):
    argv = synthetic_argv("train", tmp_path, "--run-dir", str(tmp_path / "run"), *TINY)
    err = _fails(capsys, argv, "data build")
    assert "--dataset geoguessr/synthetic" in err


def test_run_dir_of_another_config_is_refused(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    TrainConfig(dataset="geoguessr/synthetic", epochs_frozen=3).to_json(run_dir / "config.json")
    (run_dir / "phases_done.json").write_text('{"frozen": {}}')  # Something was trained.
    before = (run_dir / "config.json").read_text()
    argv = ["train", "--run-dir", str(run_dir), "--epochs-frozen", "4"]
    _fails(capsys, argv, "different config")
    assert (run_dir / "config.json").read_text() == before


def test_run_dir_that_is_a_file(tmp_path, capsys):
    path = tmp_path / "file"
    path.write_text("x")
    _fails(capsys, ["train", "--run-dir", str(path), *TINY], "directory")


def test_weights_file_that_does_not_fit(synthetic_data_dir, tmp_path, capsys):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not an h5 file")
    argv = synthetic_argv("train", synthetic_data_dir, "--run-dir", str(tmp_path / "run"))
    argv += [*TINY, "--weights", str(bad)]
    _fails(capsys, argv, "bad.h5")


def test_weights_imagenet_without_network(synthetic_data_dir, tmp_path, capsys, monkeypatch):
    import keras

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: no network")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    argv = synthetic_argv("train", synthetic_data_dir, "--run-dir", str(tmp_path / "run"))
    argv += [*TINY, "--weights", "imagenet"]
    err = _fails(capsys, argv, "--weights none")
    assert ".h5" in err


def test_evaluate_needs_a_run_dir(tmp_path, capsys):
    _fails(capsys, ["evaluate", "--run-dir", str(tmp_path)], "config.json")


def test_demo_builds_data_trains_the_demo_experiment_and_prints_paths(
    synthetic_data_dir, tmp_path, capsys, monkeypatch
):
    from keras_geo import evaluation, experiments, runs, training

    seen = {}

    def fake_train(config, run_dir, **kwargs):  # the real one is tested elsewhere
        seen["config"], seen["runtime"] = config, kwargs["runtime"]
        metrics = evaluation.compute_metrics([0, 1], [[0.9, 0.1], [0.2, 0.8]], ["France", "Japan"])
        runs.metrics_path(run_dir, "test").parent.mkdir(parents=True)
        runs.metrics_path(run_dir, "test").write_text(json.dumps(metrics))

    monkeypatch.setattr(training, "train", fake_train)
    run_dir = tmp_path / "demo"
    argv = ["demo", "--run-dir", str(run_dir), "--data-dir", synthetic_data_dir]
    assert cli_main.main(argv) == 0
    assert seen["config"] == experiments.get("demo")
    assert seen["runtime"] == Runtime(data_dir=synthetic_data_dir)
    out = capsys.readouterr().out
    assert str(run_dir) in out and "plots" in out and "accuracy 100.0%" in out


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, capsys):
    """The real `keras-geo demo` (minutes on CPU)."""
    argv = ["demo", "--run-dir", str(tmp_path / "demo"), "--data-dir", str(tmp_path / "data")]
    assert cli_main.main(argv) == 0
    metrics = json.loads((tmp_path / "demo" / "metrics" / "test.json").read_text())
    assert metrics["accuracy"] >= 0.60  # chance: 0.05
    from keras_geo import experiments, runs
    from keras_geo.config import PHASES

    phases = [p for p in PHASES if experiments.get("demo").epochs(p)]  # The phases it trains.
    assert phases
    for phase in phases:  # every phase the demo trains learns, none diverges
        history = runs.read_history(tmp_path / "demo", phase)
        assert history[-1]["accuracy"] > history[0]["accuracy"], phase
        assert all(row["loss"] < 5 for row in history), phase
