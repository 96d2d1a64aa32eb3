"""Command-line flags spelled one way for every command.

Each field `name` of `TrainConfig` (the recipe) and `Runtime` becomes
`--name-with-dashes`: its type from the annotation, its help from
`metadata["help"]`, its choices from a `Literal` annotation, and a bool
becomes `--x/--no-x`. Every flag defaults to None ("not given"), so a
command layers the given flags over its own base config:

    parser = argparse.ArgumentParser()
    add_config_flags(parser, exclude=("seed",))
    config, runtime = with_flags(parser.parse_args(), TrainConfig(), Runtime())

A new field needs no command-line code: `train`, `tune` and `bench train`
pick it up, spelled the same. The flags of an idea that is not
a field (`--phase`, `--split`, `--json`) come from one function each here.
`tests/test_flags.py` walks every subcommand's parser and checks that each
idea has one spelling.
"""

import argparse
import dataclasses
import types
import typing

from keras_geo.config import PHASES, Runtime, TrainConfig, choices
from keras_geo.errors import UserError, one_line

SPLITS = ("train", "validation", "test")
PHASE_HELP = (
    "frozen: the backbone frozen, only the head trains (feature extraction); "
    "finetune: the backbone's last --finetune-stages stages train too"
)

_PARSERS_FIELDS = "_config_fields"  # Where a parser remembers the fields it was given.


_SECTIONS = (  # (class, title of its group in --help)
    (TrainConfig, "recipe (TrainConfig fields: what is trained)"),
    (Runtime, "runtime (Runtime fields: where and how it runs)"),
)


def config_fields(*, only=None, exclude=()):
    """The fields of `TrainConfig`, then `Runtime`, named in `only` (default all), less `exclude`.

    Raises:
        ValueError: a name in `only` or `exclude` is no field of either.
    """
    fields = [field for cls, _ in _SECTIONS for field in dataclasses.fields(cls)]
    known = {field.name for field in fields}
    unknown = sorted(set(only or ()) - known | set(exclude) - known)
    if unknown:
        raise ValueError(
            f"Unknown TrainConfig or Runtime field(s) {unknown}. Known fields: {sorted(known)}"
        )
    return [
        field
        for field in fields
        if (only is None or field.name in only) and field.name not in exclude
    ]


def add_config_flags(parser, *, only=None, exclude=(), defaults=None, helps=None):
    """Adds one flag per selected `TrainConfig` and `Runtime` field, each defaulting to None.

    Args:
        parser: An `argparse.ArgumentParser`.
        only: Field names to add; None: every field of both.
        exclude: Field names to leave out (e.g. those a command sets itself).
        defaults: The `TrainConfig` (and/or `Runtime`) whose values the help
            shows as defaults; None: the classes' own.
        helps: `{field: help}` where a command means a field differently
            (none of them shows a default).
    """
    defaults = defaults if isinstance(defaults, tuple | list) else (defaults,)
    helps = helps or {}
    selected = config_fields(only=only, exclude=exclude)
    for cls, title in _SECTIONS:
        names = {field.name for field in dataclasses.fields(cls)}
        section = [field for field in selected if field.name in names]
        if not section:
            continue
        shown = next((d for d in defaults if isinstance(d, cls)), None) or cls()
        group = parser.add_argument_group(title)
        hints = typing.get_type_hints(cls)
        for field in section:
            _add_flag(group, field, _value_type(hints[field.name]), shown, helps)
    parser.set_defaults(**{_PARSERS_FIELDS: [field.name for field in selected]})


def _add_flag(group, field, kind, defaults, helps):
    default = getattr(defaults, field.name)
    text = field.metadata["help"] + ("" if default is None else f" (default: {default})")
    kwargs = dict(dest=field.name, default=None, help=helps.get(field.name, text))
    if kind is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    elif choices(field.name):
        kwargs["choices"] = choices(field.name)
    else:
        kwargs["type"] = kind
    group.add_argument("--" + field.name.replace("_", "-"), **kwargs)


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


def add_model_flag(parser):
    """Adds `--model PATH`: the model `predict` and `app` serve (default: the bundled one)."""
    parser.add_argument(
        "--model",
        default=None,
        metavar="PATH",
        help="SavedModel, .tflite, run dir or .keras file (default: the bundled model)",
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
    return _given(args, TrainConfig)


def runtime_overrides(args):
    """The `Runtime` fields given on the command line, as a dict for `replace`."""
    return _given(args, Runtime)


def with_flags(args, config, runtime):
    """`(config, runtime)` with the fields given on the command line applied.

    Raises:
        UserError: a value out of range, in one line (argparse checked the types).
    """
    try:
        return config.replace(**config_overrides(args)), runtime.replace(**runtime_overrides(args))
    except (TypeError, ValueError) as error:
        raise UserError(one_line(error)) from None


def _given(args, cls):
    names = set(getattr(args, _PARSERS_FIELDS, ())) & {f.name for f in dataclasses.fields(cls)}
    return {name: getattr(args, name) for name in sorted(names) if getattr(args, name) is not None}


def _value_type(annotation):
    """`int` for `int`, `float` for `float | None`, `str` for a `Literal` of strings."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        (annotation,) = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    if typing.get_origin(annotation) is typing.Literal:
        return type(typing.get_args(annotation)[0])
    return annotation
