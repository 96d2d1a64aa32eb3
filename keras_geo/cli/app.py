"""`keras-geo app`: serve a web page and a JSON API that name a screenshot's country."""

from keras_geo.cli import flags

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
MAX_UPLOAD_MB = 1024  # Uploads are held in memory while checked: a GB is plenty.


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "app",
        help="serve a web page and a JSON API for a trained model",
        description=(
            "Serve, from one process, a Gradio page (drop a screenshot, see the top "
            "countries, a world map and a Grad-CAM heatmap) and a JSON API "
            "(GET /api/health, POST /api/predict with multipart field `image`; OpenAPI "
            "schema at /api/openapi.json, docs at /api/docs; Gradio clients call /predict). "
            "Without --model, the model bundled with keras-geo (real screenshots of 20 "
            "countries: docs/model_card.md); --model is a SavedModel or .tflite file "
            "written by `keras-geo export`, a run directory or a .keras file (Grad-CAM "
            "needs one of the last two). The page names the model and its test accuracy. "
            "Ctrl-C or SIGTERM stops it and deletes every upload."
        ),
    )
    flags.add_model_flag(parser)
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: 127.0.0.1, this machine only)",
    )
    parser.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    parser.add_argument(
        "--top-k", type=int, default=5, metavar="K", help="countries per answer (default: 5)"
    )
    parser.add_argument(
        "--max-upload-mb",
        type=float,
        default=20,
        metavar="MB",
        help="largest accepted upload (default: 20)",
    )
    parser.add_argument(
        "--max-batch",
        type=int,
        default=8,
        metavar="N",
        help="most concurrent requests per model call; 1 turns batching off (default: 8)",
    )
    parser.set_defaults(func=run, tf_min_log_level="3")  # Bad uploads get our one line.


def _check_args(args):
    from keras_geo.errors import UserError

    for flag, value, low in (("--top-k", args.top_k, 1), ("--max-batch", args.max_batch, 1)):
        if value < low:
            raise UserError(f"`{flag}` must be >= {low}. Received: {flag} {value}")
    if not 0 < args.max_upload_mb <= MAX_UPLOAD_MB:  # Also refuses nan and inf.
        raise UserError(
            f"`--max-upload-mb` must be > 0 and at most {MAX_UPLOAD_MB}. "
            f"Received: --max-upload-mb {args.max_upload_mb}"
        )
    if not 0 < args.port < 65536:
        raise UserError(f"`--port` must be in 1..65535. Received: --port {args.port}")


def _check_extra():
    import keras_geo.app  # noqa: F401 (turns Gradio analytics off before gradio is imported)
    from keras_geo.app import uploads
    from keras_geo.errors import UserError

    uploads.private_cache()  # Before gradio is imported: it reads the folder then too.

    try:
        import fastapi  # noqa: F401
        import gradio  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as error:
        raise UserError(
            f"keras-geo app needs the `app` extra ({error.name} is missing): "
            "pip install 'keras-geo[app]' (in a clone: pip install -e '.[app]')."
        ) from None


def run(args):
    import sys

    _check_args(args)
    if args.host not in LOCAL_HOSTS:
        print(
            f"keras-geo: warning: --host {args.host} lets other machines reach the app; "
            "it has no authentication.",
            file=sys.stderr,
        )
    _check_extra()
    # Imports here keep `keras-geo --help` fast (gradio and tensorflow are heavy).
    from keras_geo.app import launch

    return launch.serve(
        args.model,
        host=args.host,
        port=args.port,
        top_k=args.top_k,
        max_upload_mb=args.max_upload_mb,
        max_batch=args.max_batch,
    )
