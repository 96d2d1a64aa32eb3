"""`keras_geo.cli.flags`: one flag per config field and one spelling per idea, everywhere."""

import argparse
import collections
import dataclasses
import re

import pytest

from keras_geo.cli import flags
from keras_geo.cli import main as cli_main
from keras_geo.config import Runtime, TrainConfig

FIELDS = (*dataclasses.fields(TrainConfig), *dataclasses.fields(Runtime))


def _subparser(*path):
    parser = cli_main.build_parser()
    for name in path:
        action = next(a for a in parser._actions if a.dest and a.choices and name in a.choices)
        parser = action.choices[name]
    return parser


def _config_flags(parser):
    """{field: (option strings, help, choices)} of the config flags of `parser`."""
    fields = {field.name for field in FIELDS}
    return {
        action.dest: (tuple(action.option_strings), action.help, action.choices)
        for action in parser._actions
        if action.dest in fields
    }


def test_train_tune_and_bench_spell_shared_fields_the_same():
    train = _config_flags(_subparser("train"))
    tune = _config_flags(_subparser("tune"))
    bench = _config_flags(_subparser("bench", "train"))
    assert set(train) == {field.name for field in FIELDS}
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
    unset = parser.parse_args(["--run-dir", "r"])
    assert flags.config_overrides(unset) == {} and flags.runtime_overrides(unset) == {}
    argv = ["--run-dir", "r"]
    for field in FIELDS:
        option = "--" + field.name.replace("_", "-")
        argv += [f"--no-{option[2:]}"] if field.type is bool else [option, _value(field)]
    args = parser.parse_args(argv)
    overrides, runtime = flags.config_overrides(args), flags.runtime_overrides(args)
    config = TrainConfig().replace(**overrides)
    assert set(overrides) == {field.name for field in dataclasses.fields(TrainConfig)}
    assert set(runtime) == {field.name for field in dataclasses.fields(Runtime)}
    assert config.flip is False and config.cache_features is False and config.tau_km == 75.5
    assert config.image_size == 64 and config.learning_rate == 64.0
    assert Runtime().replace(**runtime) == Runtime(
        data_dir="/tmp/x",
        data_service="grpc://localhost:5050",
        strategy="mirrored",
        mixed_precision=False,
    )


def test_bad_choice_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main.main(["train", "--run-dir", "r", "--loss", "mse"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'mse'" in capsys.readouterr().err


def test_unknown_field_names_are_refused():
    with pytest.raises(ValueError, match="Unknown TrainConfig or Runtime field"):
        flags.config_fields(exclude=("no_such_field",))


# --- one spelling per idea, across every subcommand ---------------------------


def _leaf_parsers(parser=None, path=()):
    """Yields `(path, parser)` of every subcommand that runs (`data build`, `train`, ...)."""
    parser = parser or cli_main.build_parser()
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not groups:
        yield " ".join(path), parser
        return
    for name, child in groups[0].choices.items():
        yield from _leaf_parsers(child, (*path, name))


def _shown(parser):
    """The options `--help` shows: `{option string: action}` (hidden aliases left out)."""
    return {
        option: action
        for action in parser._actions
        if action.help != argparse.SUPPRESS and not isinstance(action, argparse._HelpAction)
        for option in action.option_strings
    }


LEAVES = dict(_leaf_parsers())
# What each command reads a trained model from, and where it trains or evaluates one.
READS_A_MODEL = ("export", "predict", "app")
WRITES_A_RUN = ("train", "tune", "evaluate", "demo")


def test_every_subcommand_is_walked():
    assert {"data build", "data info", "train", "tune", "bench input", "bench train"} < set(LEAVES)
    assert len(LEAVES) == 14


def test_one_flag_name_per_idea_in_every_subcommand():
    dest_spellings = collections.defaultdict(set)
    for command, parser in LEAVES.items():
        shown = _shown(parser)
        for option, action in shown.items():
            if not option.startswith("--no-"):
                dest_spellings[action.dest].add(option)
        # The dataset: `--dataset geoguessr/<config>` wherever a command takes one.
        assert "--config" not in shown, command
        if "--dataset" in shown:
            assert "geoguessr/<config>" in shown["--dataset"].help, command
        # A trained model is read from `--model`; `--run-dir` is where a run is written.
        if command in READS_A_MODEL:
            assert "--model" in shown and "--run-dir" not in shown, command
        if "--run-dir" in shown:
            assert command in WRITES_A_RUN, command
        # JSON output: the `--json` switch prints JSON on stdout, everywhere.
        if "--json" in shown:
            assert shown["--json"].nargs == 0, command
            assert "as one JSON document on stdout" in shown["--json"].help, command
        # Phases: the same two, in training order, with the same help.
        if "--phase" in shown:
            assert shown["--phase"].metavar == "{frozen,finetune}", command
            assert shown["--phase"].help.startswith(flags.PHASE_HELP), command
        if "--split" in shown:
            choices = tuple(shown["--split"].choices)
            assert choices == tuple(s for s in flags.SPLITS if s in choices), command
    several = {dest: names for dest, names in dest_spellings.items() if len(names) > 1}
    assert several == {}, "one idea, several flag names"


def test_one_meaning_per_flag_name_in_every_subcommand():
    """A flag name shared by subcommands takes a value in all of them or in none."""
    kinds = collections.defaultdict(set)
    for parser in LEAVES.values():
        for option, action in _shown(parser).items():
            kinds[option].add(action.nargs == 0)
    assert {option: kind for option, kind in kinds.items() if len(kind) > 1} == {}


def test_help_texts_name_only_flags_their_command_has():
    """E.g. tune's --finetune-learning-rate may not default to a --learning-rate tune lacks."""
    for command, parser in LEAVES.items():
        options = {o for a in parser._actions for o in a.option_strings}
        for option, action in _shown(parser).items():
            for named in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", action.help or ""):
                assert named in options, f"{command} {option} help names {named}"


def test_help_texts_hold_for_every_backbone():
    for command, parser in LEAVES.items():
        for option, action in _shown(parser).items():
            text = action.help or ""
            if option == "--backbone":
                continue
            assert "ResNet50" not in text and "conv5" not in text, f"{command} {option}: {text}"


def test_hidden_aliases_of_the_old_spellings_still_work():
    parser = cli_main.build_parser()
    assert parser.parse_args(["data", "build", "--config", "synthetic"]).dataset == (
        "geoguessr/synthetic"
    )
    assert parser.parse_args(["data", "info", "--dataset", "all", "--out", "o"]).dataset == (
        "geoguessr/all"
    )
    assert parser.parse_args(["export", "--run-dir", "r", "--out", "o"]).model == "r"
    assert parser.parse_args(["bench", "train", "--phase", "full"]).phase == "full"
