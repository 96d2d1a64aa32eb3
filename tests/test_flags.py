"""`keras_geo.cli.flags`: one flag per TrainConfig field, the same in every command."""

import dataclasses
import re

import pytest

from keras_geo.cli import flags
from keras_geo.cli import main as cli_main
from keras_geo.config import TrainConfig


def _subparser(*path):
    parser = cli_main.build_parser()
    for name in path:
        action = next(a for a in parser._actions if a.dest and a.choices and name in a.choices)
        parser = action.choices[name]
    return parser


def _config_flags(parser):
    """{field: (option strings, help, choices)} of the TrainConfig flags of `parser`."""
    fields = {field.name for field in dataclasses.fields(TrainConfig)}
    return {
        action.dest: (tuple(action.option_strings), action.help, action.choices)
        for action in parser._actions
        if action.dest in fields
    }


def test_train_tune_and_bench_spell_shared_fields_the_same():
    train = _config_flags(_subparser("train"))
    tune = _config_flags(_subparser("tune"))
    bench = _config_flags(_subparser("bench", "train"))
    assert set(train) == {field.name for field in dataclasses.fields(TrainConfig)}
    assert set(tune) == set(train) - {
        "batch_size", "learning_rate", "weight_decay", "alpha", "epochs_frozen", "epochs_finetune",
    }  # fmt: skip
    for name in tune:
        assert tune[name][:1] == train[name][:1] and tune[name][2] == train[name][2]
    for name in bench:
        assert bench[name][0] == train[name][0]
    assert train["flip"][0] == ("--flip", "--no-flip")
    assert train["loss"][2] == ("haversine", "crossentropy")


def test_help_lists_the_same_flags(capsys):
    texts = {}
    for command in ("train", "tune"):
        with pytest.raises(SystemExit):
            cli_main.main([command, "--help"])
        texts[command] = capsys.readouterr().out
    for flag in ("--dataset", "--image-size", "--loss", "--no-flip", "--mixed-precision"):
        assert flag in texts["train"] and flag in texts["tune"]
    flag = re.compile(r"^\s+--learning-rate\b", re.MULTILINE)
    assert flag.search(texts["train"]) and not flag.search(texts["tune"])


def _value(field):
    """A valid non-default command-line value of a field."""
    return {
        "dataset": "geoguessr/synthetic",
        "data_dir": "/tmp/x",
        "weights": "none",
        "loss": "crossentropy",
        "strategy": "mirrored",
        "tau_km": "75.5",
        "backbone": "vgg16",
        "finetune_stages": "all",
        "lr_schedule": "cosine",
        "crop_min_area": "0.5",
        "class_weight": "balanced",
        "data_service": "grpc://localhost:5050",
    }.get(field.name, "64")


def test_every_field_round_trips_and_unset_flags_are_none():
    parser = _subparser("train")
    assert flags.config_overrides(parser.parse_args(["--run-dir", "r"])) == {}
    argv = ["--run-dir", "r"]
    for field in dataclasses.fields(TrainConfig):
        option = "--" + field.name.replace("_", "-")
        argv += [f"--no-{option[2:]}"] if field.type is bool else [option, _value(field)]
    overrides = flags.config_overrides(parser.parse_args(argv))
    config = TrainConfig().replace(**overrides)
    assert set(overrides) == {field.name for field in dataclasses.fields(TrainConfig)}
    assert config.flip is False and config.cache_features is False and config.tau_km == 75.5
    assert config.image_size == 64 and config.learning_rate == 64.0


def test_bad_choice_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main.main(["train", "--run-dir", "r", "--loss", "mse"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'mse'" in capsys.readouterr().err


def test_unknown_field_names_are_refused():
    with pytest.raises(ValueError, match="Unknown TrainConfig field"):
        flags.config_fields(exclude=("no_such_field",))
