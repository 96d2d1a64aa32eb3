"""The command reference, generated from the argparse parsers: `docs/commands.md`.

    python -m keras_geo.cli.reference > docs/commands.md

Every listed subcommand gets a section with its description and one table row
per flag or positional argument, its help text as `--help` shows it (with
`%(default)s` filled in). Flags hidden from `--help` (the old spellings kept
for one release) are left out here too. `tests/test_commands_reference.py`
fails when the file is stale or misses a flag.
"""

import argparse
import sys
import textwrap

from keras_geo.cli import main as cli_main

REGENERATE = "python -m keras_geo.cli.reference > docs/commands.md"

_HEADER = f"""# Command reference

Generated from the argparse parsers of `keras-geo` by `{REGENERATE}`;
do not edit by hand (`tests/test_commands_reference.py` fails when this page is
stale). The same text is in `keras-geo COMMAND --help`.
"""


def subcommands(parser, path=("keras-geo",)):
    """Yields `(path, parser)` for `parser` and every listed subcommand below it, depth first."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for listed in action._choices_actions:  # Only those `--help` lists.
                yield from subcommands(action.choices[listed.dest], (*path, listed.dest))


def arguments(parser):
    """The arguments of `parser` that `--help` shows, minus `--help` and subcommand choices."""
    return [
        action
        for action in parser._actions
        if action.help != argparse.SUPPRESS
        and not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction))
    ]


def render(parser=None):
    """The whole reference as Markdown text."""
    parser = parser or cli_main.build_parser()
    sections = [_HEADER]
    for path, sub in subcommands(parser):
        sections.append(_section(path, sub))
    return "\n".join(sections)


def _section(path, parser):
    lines = [f"## `{' '.join(path)}`", ""]
    if parser.description:
        lines += [_description(parser), ""]
    children = [
        listed
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for listed in action._choices_actions
    ]
    if children:
        lines += ["| subcommand | what it does |", "|---|---|"]
        lines += [f"| `{' '.join((*path, c.dest))}` | {_cell(c.help or '')} |" for c in children]
        lines.append("")
    rows = arguments(parser)
    if rows:
        lines += ["| argument | help |", "|---|---|"]
        lines += [f"| {_spelling(action)} | {_cell(_help(action))} |" for action in rows]
        lines.append("")
    return "\n".join(lines)


def _description(parser):
    """The description as `--help` shows it: kept line by line where the parser keeps it so."""
    if issubclass(parser.formatter_class, argparse.RawDescriptionHelpFormatter):
        return "```text\n" + textwrap.dedent(parser.description).strip() + "\n```"
    return " ".join(parser.description.split())


def _spelling(action):
    """`--image-size VALUE`, `--flip`, `--no-flip`, `--loss {haversine,crossentropy}`, `IMAGES`."""
    if not action.option_strings:
        return f"`{action.metavar or action.dest.upper()}`"
    value = ""
    if action.nargs != 0:
        if action.metavar is not None:
            value = f" {action.metavar}"
        elif action.choices is not None:
            value = " {" + ",".join(str(c) for c in action.choices) + "}"
        else:
            value = f" {action.dest.upper()}"
    return ", ".join(f"`{option}{value}`" for option in action.option_strings)


def _help(action):
    """The help text with argparse's `%(name)s` fields filled in, as `--help` prints it."""
    text = action.help or ""
    if "%" not in text:
        return text
    params = {k: v for k, v in vars(action).items() if v is not argparse.SUPPRESS}
    if params.get("choices") is not None:
        params["choices"] = ", ".join(str(c) for c in params["choices"])
    return text % params


def _cell(text):
    return " ".join(text.split()).replace("|", "\\|")


def main():
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
