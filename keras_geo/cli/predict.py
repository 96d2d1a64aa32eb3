"""`keras-geo predict`: name the countries of screenshots."""

from keras_geo.cli import flags


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "predict",
        help="name the countries of image files",
        description=(
            "Print each image's top-k countries with probabilities, after a line naming "
            "the model, its training data and its measured test accuracy. Without "
            "--model, the model bundled with keras-geo (real screenshots of 20 "
            "countries, trained from scratch: docs/model_card.md); --model is a "
            "SavedModel or .tflite file written by `keras-geo export`, a run directory "
            "or a .keras file. A bad image file is reported on stderr and the others are "
            "still predicted; the exit code is 1 if any file failed."
        ),
    )
    flags.add_model_flag(parser)
    parser.add_argument(
        "images", nargs="+", metavar="IMAGE", help="JPEG, PNG, GIF, BMP or WebP files, any size"
    )
    parser.add_argument(
        "--top-k",
        type=int,
        default=5,
        metavar="K",
        help="countries per image (default: 5)",
    )
    flags.add_json_flag(parser, "the predictions and errors")
    parser.add_argument(
        "--tta",
        type=int,
        default=None,
        metavar="N",
        help="average over N deterministic test-time views, no flips (a run dir or "
        ".keras; a SavedModel has those of its export)",
    )
    # TensorFlow's C++ decoder logs would repeat our one-line errors; a user
    # who wants them sets TF_CPP_MIN_LOG_LEVEL=0.
    parser.set_defaults(func=run, tf_min_log_level="3")


def run(args):
    import json
    import sys

    from keras_geo.errors import UserError

    if args.top_k < 1:
        raise UserError(f"`--top-k` must be >= 1. Received: --top-k {args.top_k}")
    from keras_geo import predict

    predictor = predict.load_predictor(args.model, tta=args.tta)
    predictions, errors = predict.predict_files(predictor, args.images, top_k=args.top_k)
    for error in errors:
        print(f"keras-geo: error: {error['file']}: {error['error']}", file=sys.stderr)
    if args.json:
        document = {
            "model": predictor.info.name,
            "model_info": predictor.info.to_json(),
            "predictions": predictions,
            "errors": errors,
        }
        print(json.dumps(document, indent=2, allow_nan=False))  # Never a bare NaN.
    elif predictions:
        print(f"Model: {predictor.info.summary()}\n")
        print(predict.format_table(predictions))
    return 1 if errors else 0
