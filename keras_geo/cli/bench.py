"""`keras-geo bench`: throughput benchmarks; each ends with `images/s: <number>`.

Subcommands: `input` (training input pipeline from the built dataset),
`baseline` (the paper's PIL + worker-process pipeline over the original
frames), `train` (training steps of one phase), `cache` (frozen epoch from
cached features vs through the backbone), `decode` (stored image size),
`scaling` (1x/2x/4x data), `fake-kaggle` (a Kaggle-layout folder of
1536x662 JPEGs) and `report` (everything, written to BENCHMARKS tables).
"""

DEFAULT_SECONDS = 15.0


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "bench",
        help="measure throughput (images/s) of the input pipeline and training",
        description=__doc__,
    )
    commands = parser.add_subparsers(dest="bench_command", metavar="BENCHMARK")
    commands.required = True
    for add in (
        _add_input,
        _add_baseline,
        _add_train,
        _add_cache,
        _add_decode,
        _add_scaling,
        _add_fake_kaggle,
        _add_report,
    ):
        add(commands)


def _common(parser, *, seconds=True):
    if seconds:
        parser.add_argument(
            "--seconds",
            type=_positive_float,
            default=DEFAULT_SECONDS,
            help="timed duration after warm-up (default %(default)s)",
        )
    parser.add_argument("--json", metavar="FILE", help="also write the details as JSON")


def _add_input(commands):
    p = commands.add_parser("input", help="training input pipeline from the built dataset")
    p.add_argument("--dataset", default="geoguessr/top20", help="geoguessr/<config>")
    p.add_argument("--data-dir", help="TFDS data dir (default: TFDS' default)")
    p.add_argument("--split", default="train")
    p.add_argument("--batch-size", type=_positive_int, default=64)
    p.add_argument("--image-size", type=_image_size, default=224)
    p.add_argument("--no-flip", dest="flip", action="store_false", help="no random flips")
    _common(p)
    p.set_defaults(func=_run_input)


def _add_baseline(commands):
    p = commands.add_parser("baseline", help="the paper's PIL pipeline over the original frames")
    p.add_argument("--manual-dir", required=True, help="folder in the Kaggle layout")
    p.add_argument("--workers", type=_positive_int, help="worker processes (default: cores)")
    p.add_argument("--batch-size", type=_positive_int, default=64)
    p.add_argument("--image-size", type=_image_size, default=224)
    _common(p)
    p.set_defaults(func=_run_baseline)


def _add_train(commands):
    p = commands.add_parser("train", help="training steps of one phase on random tensors")
    p.add_argument("--phase", choices=("frozen", "finetune", "full"), default="finetune")
    p.add_argument("--image-size", type=_image_size, default=224)
    p.add_argument("--batch-size", type=_positive_int, default=16)
    p.add_argument("--steps", type=_positive_int, default=5, help="timed steps (after 2 warm-up)")
    p.add_argument("--mixed-precision", action="store_true", help="mixed_float16 policy")
    p.add_argument("--weights", default="none", help="none (default), imagenet or a .h5 path")
    p.add_argument(
        "--backbone",
        nargs="+",
        default=["resnet50"],
        metavar="NAME",
        help="one or more backbones, measured one after the other in this run (default: resnet50)",
    )
    _common(p, seconds=False)
    p.set_defaults(func=_run_train)


def _add_cache(commands):
    p = commands.add_parser("cache", help="frozen epoch: cached features vs backbone")
    p.add_argument("--images", type=_positive_int, default=256, help="images in the epoch")
    p.add_argument("--image-size", type=_image_size, default=224)
    p.add_argument("--batch-size", type=_positive_int, default=32)
    p.add_argument("--work-dir", help="where the feature cache goes (default: a temp dir)")
    _common(p, seconds=False)
    p.set_defaults(func=_run_cache)


def _add_decode(commands):
    p = commands.add_parser("decode", help="decode cost of 1536x662 vs stored 224x224 JPEGs")
    p.add_argument("--images", type=_positive_int, default=64, help="distinct frames")
    p.add_argument("--image-size", type=_image_size, default=224)
    p.add_argument("--frame-size", type=_frame_size, default=(1536, 662), help="WxH")
    p.add_argument("--batch-size", type=_positive_int, default=32)
    _common(p)
    p.set_defaults(func=_run_decode, seconds=5.0)


def _add_scaling(commands):
    p = commands.add_parser("scaling", help="build, input and epoch time at 1x, 2x, 4x data")
    p.add_argument("--work-dir", required=True, help="folder for fake frames and datasets")
    p.add_argument(
        "--per-country",
        type=_positive_int,
        default=4,
        help="images per country at 1x (default %(default)s)",
    )
    p.add_argument("--factors", default="1,2,4", help="data multiples (default %(default)s)")
    p.add_argument("--frame-size", type=_frame_size, default=(1536, 662), help="WxH")
    p.add_argument("--image-size", type=_image_size, default=224)
    p.add_argument("--batch-size", type=_positive_int, default=32)
    _common(p)
    p.set_defaults(func=_run_scaling, seconds=5.0)


def _add_fake_kaggle(commands):
    p = commands.add_parser("fake-kaggle", help="write a Kaggle-layout folder of fake frames")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--per-country", type=_positive_int, default=20)
    p.add_argument("--frame-size", type=_frame_size, default=(1536, 662), help="WxH")
    p.set_defaults(func=_run_fake_kaggle)


def _add_report(commands):
    p = commands.add_parser("report", help="run every benchmark, write Markdown tables")
    p.add_argument("--work-dir", required=True, help="folder for fake frames and datasets")
    p.add_argument("--out", required=True, help="Markdown file for the tables")
    p.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    p.set_defaults(func=_run_report)


def _finish(record, args):
    from keras_geo.bench.timing import result_line, write_json

    write_json(args.json, record)
    print(result_line(record["images_per_second"]))


def _run_input(args):
    from keras_geo.bench.input import run_input

    record = run_input(
        args.dataset,
        data_dir=args.data_dir,
        split=args.split,
        batch_size=args.batch_size,
        image_size=args.image_size,
        seconds=args.seconds,
        flip=args.flip,
    )
    print(
        f"{record['images']} images in {record['seconds']:.1f} s, "
        f"{record['images_per_cpu_second']:.1f} images per CPU-second"
    )
    _finish(record, args)


def _run_baseline(args):
    from keras_geo.bench.baseline import run_baseline

    record = run_baseline(
        args.manual_dir,
        seconds=args.seconds,
        workers=args.workers,
        batch_size=args.batch_size,
        size=args.image_size,
    )
    print(
        f"{record['images']} images in {record['seconds']:.1f} s, "
        f"{record['workers']} workers, {record['files']} files, "
        f"{record['images_per_cpu_second']:.1f} images per CPU-second"
    )
    _finish(record, args)


def _run_train(args):
    from keras_geo import backbones
    from keras_geo.bench.timing import write_json
    from keras_geo.bench.train import run_train

    for name in args.backbone:
        backbones.get(name)  # An unknown name fails before any timing.
    records = []
    for name in args.backbone:
        record = run_train(
            args.phase,
            image_size=args.image_size,
            batch_size=args.batch_size,
            steps=args.steps,
            mixed_precision=args.mixed_precision,
            weights=args.weights,
            backbone=name,
        )
        print(f"device: {record['device']}")
        print(
            f"{name} phase {record['phase']}: {record['parameters']:,} parameters "
            f"({record['trainable_parameters']:,} trainable), {record['steps']} steps "
            f"in {record['seconds']:.1f} s, {record['images_per_second']:.1f} images/s",
            flush=True,
        )
        records.append(record)
    if len(records) == 1:
        _finish(records[0], args)
        return
    write_json(args.json, {"benchmark": "train", "records": records})
    base = records[0]["images_per_second"]
    for record in records:
        ratio = record["images_per_second"] / base
        print(f"{record['backbone']:>18}: {ratio:.2f}x {records[0]['backbone']}")


def _run_cache(args):
    from keras_geo.bench.cache import run_cache

    record = run_cache(
        images=args.images,
        image_size=args.image_size,
        batch_size=args.batch_size,
        work_dir=args.work_dir,
    )
    print(
        f"frozen epoch of {record['images']} images: backbone "
        f"{record['backbone_epoch_s']:.2f} s, cached features "
        f"{record['cached_epoch_s']:.3f} s ({record['speedup']:.0f}x); "
        f"one-off feature extraction {record['extract_s']:.2f} s"
    )
    _finish(record, args)


def _run_decode(args):
    from keras_geo.bench.storage import run_decode

    record = run_decode(
        count=args.images,
        image_size=args.image_size,
        batch_size=args.batch_size,
        seconds=args.seconds,
        frame_size=args.frame_size,
    )
    for row in record["rows"]:
        print(
            f"{row['variant']:>10}: {row['mean_kb']:6.1f} KB/file, "
            f"{row['images_per_second']:8.1f} images/s"
        )
    print(f"stored vs full, per CPU-second: {record['stored_vs_full']:.1f}x")
    _finish(record, args)


def _run_scaling(args):
    from keras_geo.bench.scaling import run_scaling

    factors = _factors(args.factors)
    record = run_scaling(
        args.work_dir,
        per_country=args.per_country,
        factors=factors,
        frame_size=args.frame_size,
        image_size=args.image_size,
        batch_size=args.batch_size,
        seconds=args.seconds,
    )
    for row in record["rows"]:
        print(
            f"{row['factor']}x: {row['images']} files, build {row['build_s']:.1f} s, "
            f"input {row['input_images_per_second']:.1f} images/s, "
            f"epoch {row['epoch_s']:.1f} s"
        )
    _finish(record, args)


def _run_fake_kaggle(args):
    from keras_geo.bench.fake_kaggle import image_count, make_fake_kaggle

    root = make_fake_kaggle(args.out, images_per_country=args.per_country, size=args.frame_size)
    print(f"{image_count(root)} frames of {args.frame_size[0]}x{args.frame_size[1]} in {root}")


def _run_report(args):
    from keras_geo.bench.report import run_report

    run_report(args.work_dir, args.out, quick=args.quick)
    print(f"tables written to {args.out}")


def _factors(text):
    from keras_geo.errors import UserError

    try:
        factors = [int(part) for part in text.split(",")]
    except ValueError:
        factors = []
    if not factors or min(factors) < 1:
        raise UserError(f"--factors must be positive integers like 1,2,4. Received: {text!r}")
    return factors


def _positive_int(text):
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def _positive_float(text):
    import argparse

    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def _image_size(text):
    import argparse

    from keras_geo.config import MIN_IMAGE_SIZE

    value = _positive_int(text)
    if value < MIN_IMAGE_SIZE:
        raise argparse.ArgumentTypeError(f"must be >= {MIN_IMAGE_SIZE}, got {text!r}")
    return value


def _frame_size(text):
    import argparse

    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        width = height = 0
    if width < 8 or height < 8:
        raise argparse.ArgumentTypeError(f"must be WIDTHxHEIGHT like 1536x662, got {text!r}")
    return width, height
