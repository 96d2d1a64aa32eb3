"""Entry point of the `keras-geo` console script.

Each subcommand lives in its own module of this package and exposes
`add_parser(subparsers)`, which registers the subcommand and sets
`func=<callable(args) -> int | None>` as its default. Modules are imported
only to register their parsers; heavy imports (tensorflow, keras) happen
inside the subcommand functions so `keras-geo --help` stays fast.
"""

import argparse
import errno
import importlib
import os
import sys

from keras_geo import __version__, settings
from keras_geo.compat import tensorflow_startup
from keras_geo.errors import ModelError, StorageError, UserError

# A write that failed for lack of space or permission, wherever it happened.
_STORAGE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES)

SUBCOMMAND_MODULES = (
    "data",
    "data_service",
    "train",
    "evaluate",
    "tune",
    "ablate",
    "export",
    "predict",
    "app",
    "bench",
    "demo",
)


class _OneLineParser(argparse.ArgumentParser):
    """Reports a bad flag in one line (argparse prints its whole usage first)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


def build_parser():
    parser = _OneLineParser(
        prog="keras-geo",
        description="Name the country of a GeoGuessr screenshot.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in SUBCOMMAND_MODULES:
        module = importlib.import_module(f"keras_geo.cli.{name}")
        module.add_parser(subparsers)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings.check_environment()  # Once, before any work: one line, not a failure later.
        # TensorFlow's C++ start-up chatter (CUDA probing, CPU features) is not
        # for CLI users; `TF_CPP_MIN_LOG_LEVEL=0 keras-geo ...` brings it back.
        # A subcommand may hide TensorFlow's errors too (`tf_min_log_level`).
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", getattr(args, "tf_min_log_level", "2"))
        tensorflow_startup.quiet_tensorflow_startup()
        return args.func(args) or 0
    except (UserError, ModelError) as error:
        print(f"keras-geo: error: {error}", file=sys.stderr)
        return 2
    except StorageError as error:
        print(f"keras-geo: error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        if error.errno not in _STORAGE_ERRNOS:
            raise
        where = f" ({error.filename})" if error.filename else ""
        print(
            f"keras-geo: error: {error.strerror}{where}: free space or fix the permissions, "
            "then rerun the same command to resume.",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print("keras-geo: interrupted; rerun the same command to resume.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
