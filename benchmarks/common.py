"""Argument types and the ending every benchmark script shares (not a benchmark)."""

import argparse
import sys

from keras_geo.bench.timing import result_line, write_json
from keras_geo.config import MIN_IMAGE_SIZE
from keras_geo.errors import UserError

DEFAULT_SECONDS = 15.0


def parser(doc, *, seconds=True):
    """An `ArgumentParser` described by the script's docstring, with --seconds and --json."""
    p = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    if seconds:
        p.add_argument(
            "--seconds",
            type=positive_float,
            default=DEFAULT_SECONDS,
            help="timed duration after warm-up (default %(default)s)",
        )
    p.add_argument("--json", metavar="FILE", help="also write the details as JSON")
    return p


def run(main, argv=None):
    """Calls `main(argv)`; a `UserError` becomes a one-line error and exit status 2."""
    try:
        main(argv)
    except UserError as error:
        print(f"{sys.argv[0]}: error: {error}", file=sys.stderr)
        return 2
    return 0


def finish(record, args):
    write_json(args.json, record)
    print(result_line(record["images_per_second"]))


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


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
