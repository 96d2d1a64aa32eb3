"""`keras-geo ablate`: train experiment variants side by side, compare them on validation.

Each VARIANT is `EXPERIMENT[:field=value,...]` (TrainConfig fields), e.g.

    keras-geo ablate --out runs/ablation finetune_crossentropy finetune_haversine \
        finetune_haversine:flip=false finetune_haversine:tau_km=75 \
        finetune_haversine:backbone=efficientnetv2s

trains each into `OUT/<variant>/` (a rerun skips finished variants and resumes
an interrupted one) and writes `OUT/comparison.csv`, `OUT/comparison.md` and
the bar chart `OUT/comparison.png`: accuracy, balanced accuracy, top-5,
median km and GeoGuessr score per variant, on the validation split (choose
there; `--split test` reports the chosen recipe's test metrics). `--set field=value` applies to
every variant first (e.g. a smoke run with fewer epochs).
"""

from keras_geo.cli import flags


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "ablate",
        help="train experiment variants into sibling run dirs and compare them",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter,
    )
    parser.add_argument("variants", nargs="+", metavar="VARIANT", help="EXPERIMENT[:f=v,...]")
    parser.add_argument("--out", required=True, help="parent directory of the runs")
    parser.add_argument("--data-dir", default=None, help="TFDS data dir (default: TFDS')")
    flags.add_split_flag(
        parser,
        default="validation",
        choices=("validation", "test"),
        help="split compared, never choose by test",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="TrainConfig override for every variant (repeatable)",
    )
    parser.set_defaults(func=run)


def run(args):
    from keras_geo import ablation
    from keras_geo.errors import UserError

    common = {}
    for item in args.set:
        field, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--set expects FIELD=VALUE. Received: {item!r}")
        common[field.strip().replace("-", "_")] = value.strip()
    recipe, runtime = _split(common, args.data_dir)
    variants = [ablation.parse_variant(text, recipe) for text in args.variants]
    rows = ablation.run(variants, args.out, runtime=runtime, split=args.split)
    print(ablation.markdown_table(rows), end="")
    print(f"Comparison: {args.out}/comparison.csv, comparison.md, comparison.png")


def _split(common, data_dir):
    """`--set` values, typed: `(recipe overrides, Runtime)`; `--data-dir` is the runtime's."""
    from keras_geo import ablation
    from keras_geo.config import Runtime, TrainConfig, field_names
    from keras_geo.errors import UserError, one_line

    in_runtime = field_names(Runtime)
    base = Runtime(data_dir=data_dir)
    try:
        recipe = {
            field: ablation.parse_value(TrainConfig(), field, value)
            for field, value in common.items()
            if field not in in_runtime
        }
        runtime = {
            field: ablation.parse_value(base, field, value)
            for field, value in common.items()
            if field in in_runtime
        }
        return recipe, base.replace(**runtime)
    except (TypeError, ValueError) as error:
        raise UserError(f"--set: {one_line(error)}") from None
