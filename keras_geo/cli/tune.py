"""`keras-geo tune`: random search over batch size, learning rate, weight decay, alpha.

Examples:

    # The paper's search: 30 trials x 10 epochs, fine-tuning from ImageNet.
    keras-geo tune --dataset geoguessr/top20 --run-dir runs/tune
    # Then the paper's final 40-epoch run with the best values:
    keras-geo train --dataset geoguessr/top20 --run-dir runs/tune \\
        --hparams runs/tune/tuning/best.json --epochs-finetune 40

Rerunning the same command resumes; `--overwrite` starts afresh. For a
distributed search run the same command in every process with
KERASTUNER_TUNER_ID (chief, tuner0, tuner1, ...), KERASTUNER_ORACLE_IP and
KERASTUNER_ORACLE_PORT set, all sharing one --run-dir.
"""

import argparse

from keras_geo.config import TrainConfig
from keras_geo.errors import UserError

_EPILOG = """\
Distributed (one chief, N workers, one shared --run-dir; start the chief first):
  export KERASTUNER_ORACLE_IP=10.0.0.1 KERASTUNER_ORACLE_PORT=8000
  KERASTUNER_TUNER_ID=chief  keras-geo tune --run-dir /shared/run ...  # serves
  KERASTUNER_TUNER_ID=tuner0 keras-geo tune --run-dir /shared/run ...  # trains
  KERASTUNER_TUNER_ID=tuner1 keras-geo tune --run-dir /shared/run ...  # trains
The chief only serves trials and writes the report when all are done.
"""


def add_parser(subparsers):
    defaults = TrainConfig()
    parser = subparsers.add_parser(
        "tune",
        help="random search of batch size, learning rate, weight decay and alpha",
        description=__doc__.split("\n\n", 1)[0],
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--dataset",
        default=defaults.dataset,
        help="geoguessr/<config> (default: %(default)s)",
    )
    parser.add_argument("--data-dir", default=None, help="TFDS data dir (default: TFDS' own)")
    parser.add_argument("--run-dir", required=True, help="results go to RUN_DIR/tuning/")
    parser.add_argument(
        "--max-trials", type=int, default=30, help="default: %(default)s (the paper)"
    )
    parser.add_argument(
        "--epochs", type=int, default=10, help="epochs per trial (default: %(default)s)"
    )
    parser.add_argument(
        "--phase",
        choices=("finetune", "frozen"),
        default="finetune",
        help="finetune: conv5_* + head train (the paper's search); "
        "frozen: head only, on cached backbone features (default: %(default)s)",
    )
    parser.add_argument(
        "--weights",
        default=defaults.weights,
        help="imagenet, none, or a local no-top .h5 of the backbone (default: %(default)s)",
    )
    parser.add_argument(
        "--image-size",
        type=int,
        default=defaults.image_size,
        help="square input size, >= 32 (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        help="fixes the sequence of trials (default: %(default)s)",
    )
    parser.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=defaults.flip,
        help="random horizontal flips (they swap the driving side; default: on)",
    )
    parser.add_argument("--mixed-precision", action="store_true", help="mixed_float16 (GPU)")
    parser.add_argument("--backbone", default=defaults.backbone, help="default: %(default)s")
    parser.add_argument(
        "--finetune-stages",
        default=defaults.finetune_stages,
        help="stages trained in the finetune phase: N (1 = the last) or all (default: 1)",
    )
    parser.add_argument(
        "--class-weight",
        default=defaults.class_weight,
        help="none, balanced or sqrt loss weight per country (default: %(default)s)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="delete RUN_DIR/tuning's search and start afresh (default: resume)",
    )
    parser.add_argument(
        "--max-examples",
        type=int,
        default=None,
        help="smoke tests: use only the first N train and validation examples",
    )
    parser.set_defaults(func=run)


def config_from_args(args):
    """The fixed (not tuned) settings of the search as a `TrainConfig`."""
    if not args.dataset.startswith("geoguessr/") or args.dataset.count("/") != 1:
        raise UserError(
            "--dataset must be geoguessr/<config> (top20, all or synthetic). "
            f"Received: {args.dataset}"
        )
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0. Received: {args.seed}")
    return TrainConfig(
        dataset=args.dataset,
        data_dir=args.data_dir,
        weights=args.weights,
        image_size=args.image_size,
        flip=args.flip,
        mixed_precision=args.mixed_precision,
        seed=args.seed,
        backbone=args.backbone,
        finetune_stages=args.finetune_stages,
        class_weight=args.class_weight,
    )


def run(args):
    from keras_geo import tuning

    config = config_from_args(args)
    best = tuning.search(
        config,
        args.run_dir,
        phase=args.phase,
        max_trials=args.max_trials,
        epochs=args.epochs,
        overwrite=args.overwrite,
        max_examples=args.max_examples,
        verbose=2,
    )
    if best is not None:
        print(
            f"best hyperparameters: {best} -> {args.run_dir}/tuning/best.json",
            flush=True,
        )
    return 0
