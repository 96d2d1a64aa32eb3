"""`keras-geo bench`: check this machine's throughput; each ends with `images/s: <number>`.

`input`: the training input pipeline from the built dataset; `train`:
training steps of one phase on in-memory tensors (like `tfds.benchmark`,
what a user runs to size a machine). `--json` prints the details as one JSON
document instead. The studies behind docs/benchmarks.md (the paper-pipeline
baseline, storage, feature cache, scaling, the report) are scripts in the
repository's `benchmarks/` folder.
"""

import json

from keras_geo.cli import flags
from keras_geo.config import Runtime, TrainConfig, choices

DEFAULT_SECONDS = 15.0
# The TrainConfig and Runtime fields `bench input` and `bench train` take, as `train` spells them
# (and as `run_input` and `run_train` name their parameters).
_INPUT_FIELDS = ("dataset", "data_dir", "batch_size", "image_size", "flip")
_INPUT_DEFAULTS = TrainConfig(batch_size=64)
_TRAIN_FIELDS = ("image_size", "batch_size", "weights", "mixed_precision", "finetune_stages")
_TRAIN_DEFAULTS = TrainConfig(batch_size=16, weights="none")


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "bench",
        help="measure throughput (images/s) of the input pipeline and training",
        description=__doc__,
    )
    commands = parser.add_subparsers(dest="bench_command", metavar="BENCHMARK")
    commands.required = True
    for add in (_add_input, _add_train):
        add(commands)


def add_output_args(parser, *, seconds=True):
    """Adds `--seconds` (timed duration) and `--json` (the details on stdout, as JSON)."""
    if seconds:
        parser.add_argument(
            "--seconds",
            type=positive_float,
            default=DEFAULT_SECONDS,
            help="timed duration after warm-up (default %(default)s)",
        )
    flags.add_json_flag(parser, "the details")


def _add_input(commands):
    p = commands.add_parser("input", help="training input pipeline from the built dataset")
    flags.add_split_flag(p, default="train")
    flags.add_config_flags(p, only=_INPUT_FIELDS, defaults=_INPUT_DEFAULTS)
    add_output_args(p)
    p.set_defaults(func=_run_input)


def _add_train(commands):
    p = commands.add_parser("train", help="training steps of one phase on random tensors")
    flags.add_phase_flag(p, default="finetune", hidden=("full",))
    p.add_argument("--steps", type=positive_int, default=5, help="timed steps (after 2 warm-up)")
    flags.add_config_flags(p, only=_TRAIN_FIELDS, defaults=_TRAIN_DEFAULTS)
    p.add_argument(
        "--backbone",
        nargs="+",
        choices=choices("backbone"),
        default=[_TRAIN_DEFAULTS.backbone],
        metavar="NAME",
        help="one or more backbones, measured one after the other in this run "
        f"(default: %(default)s; choices: {', '.join(choices('backbone'))})",
    )
    add_output_args(p, seconds=False)
    p.set_defaults(func=_run_train)


def finish(record, args):
    """Prints the `images/s:` line every benchmark ends with, or (`--json`) the record as JSON."""
    from keras_geo.bench.timing import result_line

    if args.json:
        print(json.dumps(record, indent=2, sort_keys=True))
    else:
        print(result_line(record["images_per_second"]))


def _config_fields(args, fields, defaults):
    """`fields` of `defaults` (and `Runtime()`) with the flags applied: a benchmark's arguments."""
    parts = flags.with_flags(args, defaults, Runtime())
    return {name: getattr(part, name) for part in parts for name in fields if hasattr(part, name)}


def _run_input(args):
    from keras_geo.bench.input import run_input

    fields = _config_fields(args, _INPUT_FIELDS, _INPUT_DEFAULTS)
    record = run_input(split=args.split, seconds=args.seconds, **fields)
    if not args.json:
        print(
            f"{record['images']} images in {record['seconds']:.1f} s, "
            f"{record['images_per_cpu_second']:.1f} images per CPU-second"
        )
    finish(record, args)


def _run_train(args):
    from keras_geo.bench.train import run_train

    fields = _config_fields(args, _TRAIN_FIELDS, _TRAIN_DEFAULTS)
    if args.phase == "full":  # The spelling of 0.x, kept for one release.
        args.phase, fields["finetune_stages"] = "finetune", "all"
    records = []
    for name in args.backbone:
        record = run_train(args.phase, steps=args.steps, backbone=name, **fields)
        if not args.json:
            print(f"device: {record['device']}")
            print(
                f"{name} phase {_phase(record)}: "
                f"{record['parameters']:,} parameters "
                f"({record['trainable_parameters']:,} trainable), {record['steps']} steps "
                f"in {record['seconds']:.1f} s, {record['images_per_second']:.1f} images/s",
                flush=True,
            )
        records.append(record)
    if len(records) == 1:
        finish(records[0], args)
        return
    if args.json:
        print(json.dumps({"benchmark": "train", "records": records}, indent=2, sort_keys=True))
        return
    base = records[0]["images_per_second"]
    for record in records:
        ratio = record["images_per_second"] / base
        print(f"{record['backbone']:>18}: {ratio:.2f}x {records[0]['backbone']}")


def _phase(record):
    stages = record["finetune_stages"]
    return record["phase"] + (f" (stages {stages})" if stages else "")


def positive_int(text):
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def positive_float(text):
    import argparse

    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value
