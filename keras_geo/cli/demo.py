"""`keras-geo demo`: the whole pipeline in minutes on CPU, no download needed.

Builds the synthetic dataset (`geoguessr/synthetic`: 20 countries of drawn
scenes) if missing, trains the `demo` experiment (EfficientNetV2B0 at 32 px
from random weights, every layer fine-tuned), evaluates it on the test split
and prints where the run directory, metrics and figures are. Rerunning resumes
or reuses the run.
"""

from keras_geo.cli import flags


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "demo",
        help="train and evaluate a small model on synthetic data (CPU, minutes)",
        description=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument(
        "--run-dir", default=None, help="default: runs/demo (runs/demo-seed-N for --seed N > 0)"
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="TFDS data dir for the synthetic dataset (default: TFDS')",
    )
    flags.add_config_flags(parser, only=("seed",))
    parser.set_defaults(func=run)


def run(args):
    from keras_geo import datasets, experiments, training
    from keras_geo.cli.train import _print_summary
    from keras_geo.config import Runtime

    runtime = Runtime(data_dir=args.data_dir)
    config, runtime = flags.with_flags(args, experiments.get("demo"), runtime)
    run_dir = args.run_dir or ("runs/demo" if config.seed == 0 else f"runs/demo-seed-{config.seed}")
    datasets.ensure_synthetic(args.data_dir)
    training.train(config, run_dir, runtime=runtime)
    _print_summary(run_dir)
