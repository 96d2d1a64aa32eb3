"""Argument types, the parser and the ending every benchmark script shares (not a benchmark)."""

import argparse
import inspect
import sys

from keras_geo.cli.bench import add_output_args, finish, positive_float, positive_int
from keras_geo.config import MIN_IMAGE_SIZE
from keras_geo.errors import UserError

__all__ = ["finish", "positive_float", "positive_int"]  # Shared with `keras-geo bench`.


def parser(doc, *, seconds=True, sizes=None):
    """An `ArgumentParser` described by the script's docstring, with --seconds and --json.

    `sizes`: `(image_size, batch_size)` defaults of an `--image-size` and a
    `--batch-size` flag, or None for neither.
    """
    p = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    if sizes:
        p.add_argument("--image-size", type=image_size, default=sizes[0])
        p.add_argument("--batch-size", type=positive_int, default=sizes[1])
    add_output_args(p, seconds=seconds)
    return p


def call(function, args, **values):
    """Calls `function` with the parsed flags named like its parameters, and `values`."""
    names = inspect.signature(function).parameters
    return function(**{**{k: v for k, v in vars(args).items() if k in names}, **values})


def report(args, function, *, line=None, row_line=None, **values):
    """Measures, prints and writes: the ending of every benchmark script.

    Calls `function` with the flags (`call`) and `values`, prints each of the
    record's `rows` as `row_line` and the record as `line` (format strings
    over their keys), then `finish`es with the `images/s:` line; with `--json`,
    the record as JSON on stdout and nothing else.
    """
    record = call(function, args, **values)
    for row in record["rows"] if row_line and not args.json else ():
        print(row_line.format_map(row))
    if line and not args.json:
        print(line.format_map(record))
    finish(record, args)


def run(main, argv=None):
    """Calls `main(argv)`; a `UserError` becomes a one-line error and exit status 2."""
    try:
        main(argv)
    except UserError as error:
        print(f"{sys.argv[0]}: error: {error}", file=sys.stderr)
        return 2
    return 0


def image_size(text):
    value = positive_int(text)
    if value < MIN_IMAGE_SIZE:
        raise argparse.ArgumentTypeError(f"must be >= {MIN_IMAGE_SIZE}, got {text!r}")
    return value


def frame_size(text):
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        width = height = 0
    if width < 8 or height < 8:
        raise argparse.ArgumentTypeError(f"must be WIDTHxHEIGHT like 1536x662, got {text!r}")
    return width, height


def factors(text):
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise UserError(f"--factors must be positive integers like 1,2,4. Received: {text!r}")
    return values
