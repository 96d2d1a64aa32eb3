"""`keras-geo evaluate`: metrics JSON and figures of a run on one split."""


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a run directory on a split (metrics JSON, figures)",
        description=(
            "Write RUN_DIR/metrics/<split>.json (accuracy, top-5 accuracy, mean and "
            "median great-circle error in km, GeoGuessr score, majority-class "
            "baseline, per-country precision/recall/support, confusion matrix) and "
            "RUN_DIR/plots/ (confusion matrix, per-country accuracy, training curves)."
        ),
    )
    parser.add_argument("--run-dir", required=True, help="run directory written by train")
    parser.add_argument(
        "--split",
        default="test",
        choices=("train", "validation", "test"),
        help="default: test",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="default: the run's batch size, at least 64 without --tta",
    )
    parser.add_argument(
        "--tta",
        type=int,
        default=1,
        metavar="N",
        help="average over N deterministic test-time views, no flips (default: 1, none)",
    )
    parser.set_defaults(func=run)


def run(args):
    import json
    import sys

    from keras_geo import evaluation, paths
    from keras_geo.cli.train import format_summary
    from keras_geo.errors import UserError

    if args.batch_size is not None and args.batch_size < 1:
        raise UserError(f"`--batch-size` must be >= 1. Received: {args.batch_size}")
    try:
        paths.check_writable(args.run_dir, "--run-dir")
        unwritable = None
    except UserError as error:  # Still evaluate: the metrics go to stdout instead.
        unwritable = error
    metrics = evaluation.evaluate(
        args.run_dir,
        args.split,
        batch_size=args.batch_size,
        tta=args.tta,
        write=unwritable is None,
    )
    if unwritable is None:
        print(format_summary(args.run_dir, metrics, args.split))
        return 0
    print(json.dumps(metrics, indent=2, allow_nan=False))
    print(
        f"keras-geo: error: metrics and figures printed, not written: {unwritable}", file=sys.stderr
    )
    return 1
