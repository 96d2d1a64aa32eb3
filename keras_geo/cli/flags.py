"""Command-line flags spelled one way for every command.

Each `TrainConfig` field `name` becomes `--name-with-dashes`: its type from
the annotation, its help from `metadata["help"]`, its choices from a
`Literal` annotation, and a bool becomes `--x/--no-x`. Every flag defaults to
None ("not given"), so a command layers the given flags over its own base
config:

    parser = argparse.ArgumentParser()
    add_config_flags(parser, exclude=("seed",))
    config = TrainConfig().replace(**config_overrides(parser.parse_args()))

A new `TrainConfig` field needs no command-line code: `train`, `tune` and
`bench train` pick it up, spelled the same. The flags of an idea that is not
a field (`--phase`, `--split`, `--json`) come from one function each here.
`tests/test_flags.py` walks every subcommand's parser and checks that each
idea has one spelling.
"""

import argparse
import dataclasses
import types
import typing

from keras_geo.config import PHASES, TrainConfig, choices

SPLITS = ("train", "validation", "test")
PHASE_HELP = (
    "frozen: the backbone frozen, only the head trains (feature extraction); "
    "finetune: the backbone's last --finetune-stages stages train too"
)

_PARSERS_FIELDS = "_config_fields"  # Where a parser remembers the fields it was given.


def config_fields(*, only=None, exclude=()):
    """The `dataclasses.Field`s of `TrainConfig` named in `only` (default all), minus `exclude`."""
    fields = dataclasses.fields(TrainConfig)
    known = {field.name for field in fields}
    unknown = sorted(set(only or ()) - known | set(exclude) - known)
    if unknown:
        raise ValueError(f"Unknown TrainConfig field(s) {unknown}. Known fields: {sorted(known)}")
    return [
        field
        for field in fields
        if (only is None or field.name in only) and field.name not in exclude
    ]


def add_config_flags(parser, *, only=None, exclude=(), defaults=None, helps=None):
    """Adds one flag per selected `TrainConfig` field to `parser`, each defaulting to None.

    Args:
        parser: An `argparse.ArgumentParser`.
        only: Field names to add; None: every field.
        exclude: Field names to leave out (e.g. those a command sets itself).
        defaults: The `TrainConfig` whose values the help shows as defaults;
            None: `TrainConfig()`.
        helps: `{field: help}` where a command means a field differently
            (none of them shows a default).
    """
    defaults = defaults or TrainConfig()
    helps = helps or {}
    hints = typing.get_type_hints(TrainConfig)
    group = parser.add_argument_group("config (TrainConfig fields)")
    selected = config_fields(only=only, exclude=exclude)
    for field in selected:
        kind = _value_type(hints[field.name])
        default = getattr(defaults, field.name)
        text = field.metadata["help"] + ("" if default is None else f" (default: {default})")
        text = helps.get(field.name, text)
        kwargs = dict(dest=field.name, default=None, help=text)
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif choices(field.name):
            kwargs["choices"] = choices(field.name)
        else:
            kwargs["type"] = kind
        group.add_argument("--" + field.name.replace("_", "-"), **kwargs)
    parser.set_defaults(**{_PARSERS_FIELDS: [field.name for field in selected]})


def add_phase_flag(parser, *, default, hidden=()):
    """Adds `--phase {frozen,finetune}`; `hidden` values are accepted but not shown."""
    parser.add_argument(
        "--phase",
        choices=(*PHASES, *hidden),
        default=default,
        metavar="{" + ",".join(PHASES) + "}",
        help=f"{PHASE_HELP} (default: %(default)s)",
    )


def add_split_flag(parser, *, default, choices=SPLITS, help="dataset split"):
    """Adds `--split` with `choices`, a subset of {train,validation,test} in that order."""
    parser.add_argument(
        "--split", choices=choices, default=default, help=f"{help} (default: %(default)s)"
    )


def add_json_flag(parser, what):
    """Adds the `--json` switch: print `what` as one JSON document on stdout, not as text."""
    parser.add_argument(
        "--json",
        action="store_true",
        help=f"print {what} as one JSON document on stdout instead of text",
    )


def config_overrides(args):
    """The `TrainConfig` fields given on the command line, as a dict for `replace`."""
    names = getattr(args, _PARSERS_FIELDS, ())
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _value_type(annotation):
    """`int` for `int`, `float` for `float | None`, `str` for a `Literal` of strings."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        (annotation,) = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    if typing.get_origin(annotation) is typing.Literal:
        return type(typing.get_args(annotation)[0])
    return annotation
