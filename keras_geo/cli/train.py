"""`keras-geo train`: both training phases into a run directory, then evaluation.

Config precedence, lowest first: `TrainConfig` defaults (or, with no
`--experiment`, the run directory's own `config.json` when resuming),
`--experiment NAME`, `--hparams FILE` (JSON object of `TrainConfig` fields,
e.g. a tuner's `best.json`), explicit flags. A run directory that holds a
different config is refused; `keras-geo train --run-dir DIR` alone resumes it.
"""

import json
import pathlib

from keras_geo.errors import UserError

# Flags whose value maps 1:1 onto a TrainConfig field (dest == field name).
_VALUE_FLAGS = (
    ("--dataset", str, "TFDS name `geoguessr/<config>` (top20, all, synthetic)"),
    ("--data-dir", str, "TFDS data dir (where `keras-geo data build` wrote it)"),
    ("--weights", str, "imagenet, none, or a local ResNet50 no-top .h5 path"),
    ("--image-size", int, "square input size in pixels (>= 32)"),
    ("--epochs-frozen", int, "feature-extraction epochs (0 skips the phase)"),
    ("--epochs-finetune", int, "fine-tuning epochs (0 skips the phase)"),
    ("--batch-size", int, "batch size"),
    ("--learning-rate", float, "AdamW learning rate, both phases"),
    ("--weight-decay", float, "AdamW decoupled weight decay"),
    ("--alpha", float, "weight of the expected great-circle distance term"),
    ("--tau-km", float, "haversine label smoothing temperature in km (off by default)"),
    ("--seed", int, "random seed"),
    ("--data-service", str, "tf.data service dispatcher grpc://HOST:PORT for image epochs"),
)


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "train",
        help="train both phases (frozen, finetune) into a run directory",
        description=__doc__.split("\n\n", 1)[1],
    )
    add_train_arguments(parser)
    parser.set_defaults(func=run)


def add_train_arguments(parser):
    """Adds the training flags (every default None: "not given")."""
    parser.add_argument("--run-dir", required=True, help="run directory (created or resumed)")
    parser.add_argument("--experiment", help="start from keras_geo.experiments.NAME")
    parser.add_argument("--hparams", help="JSON file of TrainConfig field overrides")
    for flag, kind, text in _VALUE_FLAGS:
        parser.add_argument(flag, type=kind, default=None, help=text)
    parser.add_argument(
        "--loss",
        choices=("haversine", "crossentropy"),
        default=None,
        help="haversine: cross-entropy + alpha x expected distance",
    )
    parser.add_argument(
        "--no-flip",
        dest="flip",
        action="store_const",
        const=False,
        default=None,
        help="no random horizontal flip (keeps driving side)",
    )
    parser.add_argument(
        "--no-cache-features",
        dest="cache_features",
        action="store_const",
        const=False,
        default=None,
        help="frozen phase on augmented images, not cached features",
    )
    parser.add_argument(
        "--mixed-precision",
        dest="mixed_precision",
        action="store_const",
        const=True,
        default=None,
        help="mixed_float16 (for GPUs)",
    )
    parser.add_argument(
        "--strategy",
        choices=("default", "mirrored", "multiworker"),
        default=None,
        help="mirrored: tf.distribute over all local GPUs; multiworker: over the "
        "machines of TF_CONFIG (run the same command on each)",
    )


def run(args):
    from keras_geo import distribute, training

    config = resolve_config(args)
    training.train(config, args.run_dir)
    if config.strategy == "multiworker" and not distribute.is_chief():
        print(f"Worker {distribute.task()} done; the chief wrote {args.run_dir}.")
        return
    _print_summary(args.run_dir)


def resolve_config(args):
    """Returns the `TrainConfig` of experiment < hparams file < explicit flags."""
    from keras_geo import experiments, runs
    from keras_geo.config import TrainConfig

    if args.experiment:
        config = experiments.get(args.experiment)
    else:
        config = runs.stored_config(args.run_dir) or TrainConfig()
    if args.hparams:
        try:
            config = config.replace(**read_hparams(args.hparams))
        except TypeError as error:
            raise UserError(f"--hparams {args.hparams}: {error}") from None
    names = [flag[2:].replace("-", "_") for flag, _, _ in _VALUE_FLAGS]
    names += ["loss", "flip", "cache_features", "mixed_precision", "strategy"]
    overrides = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    return config.replace(**overrides)


def read_hparams(path):
    """Reads a `--hparams` JSON object of TrainConfig field overrides."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise UserError(f"--hparams file not found: {path}")
    try:
        with open(path) as f:
            values = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"--hparams {path} is not valid JSON: {error}") from None
    if not isinstance(values, dict):
        raise UserError(f"--hparams {path} must hold a JSON object of config fields.")
    return {name: _coerce(name, value, path) for name, value in values.items()}


def _coerce(name, value, path):
    """Checks a JSON value against the type of the TrainConfig default."""
    from keras_geo.config import TrainConfig

    default = getattr(TrainConfig(), name, None)
    if value is None or default is None or isinstance(default, str):
        return value
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and float(value).is_integer()
        value = int(value) if ok else value
    else:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok:
        raise UserError(f"--hparams {path}: `{name}` has the wrong type: {value!r}")
    return value


def _print_summary(run_dir):
    from keras_geo import runs

    metrics_file = runs.metrics_path(run_dir, "test")
    with open(metrics_file) as f:
        metrics = json.load(f)
    print(format_summary(run_dir, metrics, "test"))


def format_summary(run_dir, metrics, split):
    """Returns the lines printed after training or evaluation."""
    from keras_geo import runs

    m = metrics
    return "\n".join(
        [
            f"Run directory: {run_dir}",
            f"Metrics:       {runs.metrics_path(run_dir, split)}",
            f"Figures:       {runs.plots_dir(run_dir)}/",
            f"Model:         best epoch of phase {m.get('model_phase') or '?'}",
            f"{split} ({m['num_examples']} images): accuracy {m['accuracy']:.1%} "
            f"(majority class {m['majority_class']}: "
            f"{m['majority_class_accuracy']:.1%}, chance {m['chance_accuracy']:.1%}), "
            f"top-5 {m['top5_accuracy']:.1%}, median error {m['median_km']:.0f} km, "
            f"GeoGuessr score {m['geoguessr_score']:.0f}/5000",
        ]
    )
