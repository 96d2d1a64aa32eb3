"""`docs/commands.md`: generated from the argparse parsers, current, and complete."""

import argparse
import pathlib

from keras_geo.cli import main as cli_main
from keras_geo.cli import reference

PAGE = pathlib.Path(__file__).resolve().parents[1] / "docs" / "commands.md"


def test_the_command_reference_is_current():
    assert PAGE.read_text() == reference.render(), (
        f"docs/commands.md is stale: regenerate it with `{reference.REGENERATE}`"
    )


def _sections(text):
    """{"keras-geo train": section text, ...} of the page."""
    parts = text.split("\n## `")[1:]
    return {part.split("`", 1)[0]: part for part in parts}


def _walk(parser, path=("keras-geo",)):
    """Every listed subcommand parser, found here without the generator's own walk."""
    yield " ".join(path), parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for listed in action._choices_actions:
                yield from _walk(action.choices[listed.dest], (*path, listed.dest))


def test_every_flag_of_every_subcommand_is_in_its_section():
    sections = _sections(PAGE.read_text())
    commands = dict(_walk(cli_main.build_parser()))
    assert set(sections) == set(commands), f"regenerate: `{reference.REGENERATE}`"
    assert {"keras-geo train", "keras-geo data build", "keras-geo bench train"} <= set(commands)
    for command, parser in commands.items():
        for action in parser._actions:
            if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
                continue
            for option in action.option_strings:
                assert f"`{option}" in sections[command], (
                    f"{command} {option} is missing from docs/commands.md: "
                    f"regenerate it with `{reference.REGENERATE}`"
                )


def test_hidden_old_spellings_stay_out_and_help_defaults_are_filled_in():
    text = PAGE.read_text()
    assert "%(default)s" not in text
    assert "`--phase {frozen,finetune}` | frozen:" in _sections(text)["keras-geo tune"]
    assert "(default: finetune)" in _sections(text)["keras-geo tune"]
    assert "--config" not in _sections(text)["keras-geo data build"]  # `data --config`: unlisted.
