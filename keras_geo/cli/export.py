"""`keras-geo export`: write a trained model as a self-contained SavedModel or LiteRT file."""

import argparse


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "export",
        help="export a trained model as a SavedModel (image bytes) or a LiteRT file",
        description=(
            "Write a TensorFlow SavedModel whose `serving_default` signature takes "
            "encoded JPEG, PNG, GIF, BMP or WebP bytes of any size (`image_bytes`) and returns "
            "`probabilities`, `top_k_countries` and `top_k_probabilities`; "
            "`serve_pixels` takes uint8 [N, H, W, 3]; `metadata` returns the class "
            "names and country coordinates. With --format tflite, write a LiteRT "
            "file whose `serving_default` takes float32 pixels [N, S, S, 3] (the "
            "screenshot squashed to the model size) and returns the same outputs "
            "plus `class_names`."
        ),
    )
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument(
        "--model",
        metavar="PATH",
        help="the trained model to export: a run directory or a .keras file",
    )
    # The spelling of 0.x (`export --run-dir`), kept for one release.
    model.add_argument("--run-dir", dest="model", help=argparse.SUPPRESS)
    parser.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="SavedModel directory to create (e.g. models/geo/1 for TF Serving), "
        "or the .tflite file with --format tflite",
    )
    parser.add_argument(
        "--format",
        choices=("savedmodel", "tflite"),
        default="savedmodel",
        help="savedmodel (default) or tflite (LiteRT, for phones and browsers)",
    )
    parser.add_argument(
        "--quantize",
        choices=QUANTIZATIONS,
        default=None,
        help="tflite weights: none (float32, the default), float16 (half the size) or "
        "dynamic (int8 weights, a quarter)",
    )
    parser.add_argument(
        "--top-k",
        type=int,
        default=5,
        metavar="K",
        help="countries in the top_k_* outputs; min(K, number of classes) (default: 5)",
    )
    parser.add_argument(
        "--tta",
        type=int,
        default=1,
        metavar="N",
        help="bake in the mean over N deterministic test-time views (default: 1, none)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing SavedModel (or .tflite file) at --out",
    )
    parser.set_defaults(func=run)


QUANTIZATIONS = ("none", "float16", "dynamic")  # keras_geo.litert's (imported lazily).


def run(args):
    import pathlib

    from keras_geo.errors import UserError

    if args.top_k < 1:
        raise UserError(f"`--top-k` must be >= 1. Received: --top-k {args.top_k}")
    from keras_geo import export, model_info, paths, runs
    from keras_geo.tta import check_views

    check_views(args.tta)
    _check_format_flags(args)

    source = pathlib.Path(args.model)
    if not source.exists():
        raise UserError(f"--model {source} does not exist: pass a run directory or a .keras file.")
    out = pathlib.Path(args.out)
    if _inside(source, out):
        raise UserError(f"--out {out} holds --model {source}: choose another --out.")
    if args.format == "tflite":
        return _run_litert(args, source, out)
    export.check_out_dir(out, args.overwrite)  # Before the slow model load.
    paths.check_writable(out, "--out")
    model, class_names, config = runs.load_model(source)
    image_size = model.input_shape[1] or config.image_size
    export.export_saved_model(
        model,
        class_names,
        out,
        image_size=image_size,
        top_k=args.top_k,
        overwrite=args.overwrite,
        tta=args.tta,
        model_record=model_info.from_run(source, config=config).record(),
    )
    k = min(args.top_k, len(class_names))
    views = f", {args.tta} test-time views" if args.tta > 1 else ""
    print(f"Exported {len(class_names)} classes ({image_size} px input, top {k}{views}) to {out}")
    print(f"Try: keras-geo predict --model {out} IMAGE.jpg")
    return 0


def _check_format_flags(args):
    from keras_geo.errors import UserError

    if args.format == "tflite" and args.tta != 1:
        raise UserError(
            f"--tta {args.tta}: a LiteRT export has no test-time views; "
            "use --format savedmodel for them."
        )
    if args.format != "tflite" and args.quantize is not None:
        raise UserError(f"--quantize {args.quantize} applies to --format tflite only.")


def _run_litert(args, source, out):
    from keras_geo import litert, paths, runs

    litert.check_out_file(out, args.overwrite)  # Before the slow model load.
    paths.check_writable(out, "--out", kind="file")
    model, class_names, config = runs.load_model(source)
    image_size = model.input_shape[1] or config.image_size
    quantize = args.quantize or "none"
    litert.export_litert(
        model,
        class_names,
        out,
        image_size=image_size,
        top_k=args.top_k,
        quantize=quantize,
        overwrite=args.overwrite,
    )
    weights = {"none": "float32", "float16": "float16", "dynamic": "int8 dynamic-range"}[quantize]
    size_mb = out.stat().st_size / 2**20
    print(
        f"Exported {len(class_names)} classes ({image_size} px input, {weights} weights, "
        f"{size_mb:.1f} MB) to {out}"
    )
    print(f"Try: keras-geo predict --model {out} IMAGE.jpg")
    return 0


def _inside(path, directory):
    """True if `path` is `directory` or lies under it."""
    path, directory = path.resolve(), directory.resolve()
    return path == directory or directory in path.parents
