"""`keras-geo tune`: random search over batch size, learning rate, weight decay, alpha.

Examples:

    # The paper's search: 30 trials x 10 epochs, fine-tuning from ImageNet.
    keras-geo tune --dataset geoguessr/top20 --run-dir runs/tune
    # Then the paper's final 40-epoch run with the best values:
    keras-geo train --dataset geoguessr/top20 --run-dir runs/tune \\
        --hparams runs/tune/tuning/best.json --epochs-finetune 40
    # Best by mean per-country recall instead, with a cosine schedule:
    keras-geo tune --dataset geoguessr/top20 --run-dir runs/tune_bal \\
        --objective val_balanced_accuracy --lr-schedule cosine --warmup-epochs 1
    # A recipe's fixed settings, searched around (as `train --experiment`):
    keras-geo tune --experiment demo --phase frozen --run-dir runs/tune_demo

Fixed settings: defaults < --experiment < --hparams < flags, as in `train`;
the tuned fields and the epochs of a recipe are each trial's. Rerunning the
same command resumes; `--overwrite` starts afresh. For a
distributed search run the same command in every process with
KERASTUNER_TUNER_ID (chief, tuner0, tuner1, ...), KERASTUNER_ORACLE_IP and
KERASTUNER_ORACLE_PORT set, all sharing one --run-dir.
"""

import argparse
import sys

from keras_geo import search_space
from keras_geo.cli import flags
from keras_geo.cli import train as cli_train

_EPILOG = """\
Distributed (one chief, N workers, one shared --run-dir; start the chief first):
  export KERASTUNER_ORACLE_IP=10.0.0.1 KERASTUNER_ORACLE_PORT=8000
  KERASTUNER_TUNER_ID=chief  keras-geo tune --run-dir /shared/run ...  # serves
  KERASTUNER_TUNER_ID=tuner0 keras-geo tune --run-dir /shared/run ...  # trains
  KERASTUNER_TUNER_ID=tuner1 keras-geo tune --run-dir /shared/run ...  # trains
The chief only serves trials and writes the report when all are done.
"""


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "tune",
        help="random search of batch size, learning rate, weight decay and alpha",
        description=__doc__,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--run-dir", required=True, help="results go to RUN_DIR/tuning/")
    cli_train.add_recipe_flags(parser)
    parser.add_argument(
        "--max-trials", type=int, default=30, help="default: %(default)s (the paper)"
    )
    parser.add_argument(
        "--epochs", type=int, default=10, help="epochs per trial (default: %(default)s)"
    )
    flags.add_phase_flag(parser, default="finetune")
    parser.add_argument(
        "--objective",
        choices=search_space.OBJECTIVES,
        default=search_space.OBJECTIVE,
        help="what the search maximises at each trial's best epoch: val_accuracy (the "
        "paper's) or val_balanced_accuracy (mean per-country recall; the majority "
        "country counts 1/C) (default: %(default)s)",
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
    # Every TrainConfig field but those a trial sets (the tuned ones, and the epochs:
    # --phase, --epochs) is a fixed setting of the search; every Runtime field a flag.
    flags.add_config_flags(parser, exclude=search_space.TRIAL_FIELDS, helps=_HELPS)
    parser.set_defaults(func=run)


_HELPS = {
    "finetune_learning_rate": "fine-tuning learning rate; set, it replaces each trial's tuned "
    "learning rate in the finetune phase (default: the trial's)",
}


def config_from_args(args):
    """The fixed (not tuned) settings of the search as a `TrainConfig`."""
    return cli_train.resolve_config(args, resume=False)


def run(args):
    from keras_geo import tuning

    config, runtime = cli_train.resolve(args, resume=False)
    if args.phase == "finetune" and config.finetune_learning_rate is not None:
        print(
            f"keras-geo: warning: finetune_learning_rate={config.finetune_learning_rate:g} "
            "fixes the fine-tuning rate, so the searched learning_rate has no effect in "
            "--phase finetune; give a recipe without it, or --phase frozen.",
            file=sys.stderr,
        )
    best = tuning.search(
        config,
        args.run_dir,
        runtime=runtime,
        phase=args.phase,
        max_trials=args.max_trials,
        epochs=args.epochs,
        overwrite=args.overwrite,
        max_examples=args.max_examples,
        objective=args.objective,
        verbose=2,
    )
    if best is not None:
        print(
            f"best hyperparameters by {args.objective}: {best} -> "
            f"{args.run_dir}/tuning/{search_space.BEST_FILE}",
            flush=True,
        )
    return 0
