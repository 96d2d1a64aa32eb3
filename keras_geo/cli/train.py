"""`keras-geo train`: both training phases into a run directory, then evaluation.

Config precedence, lowest first: `TrainConfig` and `Runtime` defaults (or,
with no `--experiment`, the run directory's own `config.json` when resuming),
`--experiment NAME`, `--hparams FILE` (JSON object of config fields, e.g. a
tuner's `best.json`), explicit flags. A run directory that holds a different
recipe is refused (one where nothing was trained yet takes the new recipe);
the runtime (data dir, strategy...) may change. `keras-geo train --run-dir DIR`
alone resumes it, `--overwrite` starts it afresh.
"""

import json
import pathlib

from keras_geo.cli import flags
from keras_geo.errors import UserError, one_line


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
    add_recipe_flags(parser)
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh: delete what a previous run trained into RUN_DIR (keeps tuning/)",
    )
    flags.add_config_flags(parser)


def add_recipe_flags(parser):
    """Adds `--experiment NAME` and `--hparams FILE` (`train` and `tune`)."""
    parser.add_argument("--experiment", help="start from keras_geo.experiments.NAME")
    parser.add_argument("--hparams", help="JSON file of TrainConfig (or Runtime) field overrides")


def run(args):
    from keras_geo import distribute, training

    config, runtime = resolve(args)
    training.train(config, args.run_dir, runtime=runtime, overwrite=args.overwrite)
    if runtime.strategy == "multiworker" and not distribute.is_chief():
        print(f"Worker {distribute.task()} done; the chief wrote {args.run_dir}.")
        return
    _print_summary(args.run_dir)


def resolve(args, *, resume=True):
    """Returns `(TrainConfig, Runtime)` of experiment < hparams file < explicit flags.

    With no `--experiment`, the base is the run directory's stored recipe
    and runtime when `resume` (train), else the defaults (tune).

    Raises:
        UserError: a value out of range, or an unknown field, in one line.
    """
    from keras_geo import config as config_lib
    from keras_geo import experiments, runs

    stored = resume and not args.experiment and runs.stored_run_config(args.run_dir)
    config, runtime = stored or (config_lib.TrainConfig(), config_lib.Runtime())
    if args.experiment:
        config = experiments.get(args.experiment)
    if args.hparams:
        hparams = read_hparams(args.hparams)
        in_runtime = config_lib.field_names(config_lib.Runtime)
        try:
            config = config.replace(**{k: v for k, v in hparams.items() if k not in in_runtime})
            runtime = runtime.replace(**{k: v for k, v in hparams.items() if k in in_runtime})
        except (TypeError, ValueError) as error:
            raise UserError(f"--hparams {args.hparams}: {one_line(error)}") from None
    return flags.with_flags(args, config, runtime)


def resolve_config(args, *, resume=True):
    """The recipe (`TrainConfig`) of `resolve`."""
    return resolve(args, resume=resume)[0]


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
    """Checks a JSON value against the type of the field's default."""
    from keras_geo.config import Runtime, TrainConfig

    default = getattr(TrainConfig(), name, getattr(Runtime(), name, None))
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
            f"{split} ({m['num_examples']} images{_views(m)}): accuracy {m['accuracy']:.1%} "
            f"(balanced {m['balanced_accuracy']:.1%}) "
            f"(majority class {m['majority_class']}: "
            f"{m['majority_class_accuracy']:.1%}, chance {m['chance_accuracy']:.1%}), "
            f"top-5 {m['top5_accuracy']:.1%}, median error {m['median_km']:.0f} km, "
            f"GeoGuessr score {m['geoguessr_score']:.0f}/5000",
        ]
    )


def _views(metrics):
    views = metrics.get("tta", 1)
    return f", {views} test-time views" if views > 1 else ""
