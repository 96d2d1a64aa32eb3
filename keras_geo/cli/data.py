"""`keras-geo data build|info`: build the geoguessr dataset and describe it."""

import argparse

CONFIGS = ("top20", "all", "synthetic")
DATASETS = tuple(f"geoguessr/{config}" for config in CONFIGS)


def add_parser(subparsers):
    parser = subparsers.add_parser("data", help="build or describe the geoguessr TFDS dataset")
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")
    actions.required = True

    build = actions.add_parser("build", help="build a geoguessr dataset from the Kaggle download")
    _add_common(build)
    build.add_argument(
        "--manual-dir",
        help="folder with the Kaggle zip, compressed_dataset/ or the country "
        "folders (default: DATA_DIR/downloads/manual; not needed for synthetic)",
    )
    build.add_argument("--overwrite", action="store_true", help="rebuild if already built")
    build.add_argument(
        "--num-workers",
        type=int,
        default=None,
        help="processes decoding and resizing frames (default: all cores; "
        "the result does not depend on it)",
    )
    build.set_defaults(func=run_build)

    info = actions.add_parser(
        "info", help="per-country counts (CSV), class distribution and samples (PNG)"
    )
    _add_common(info)
    info.add_argument("--out", required=True, help="output folder")
    info.set_defaults(func=run_info)


def _add_common(parser):
    parser.add_argument(
        "--dataset",
        type=dataset_name,
        default=DATASETS[0],
        metavar="{" + ",".join(DATASETS) + "}",
        help="TFDS name geoguessr/<config>, as `train --dataset` (default: %(default)s)",
    )
    # The spelling of 0.x (`--config top20`), kept for one release.
    parser.add_argument("--config", dest="dataset", type=dataset_name, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help="TFDS data dir (default: ~/tensorflow_datasets)")


def dataset_name(text):
    """`geoguessr/top20` (or plain `top20`) -> `geoguessr/top20`; an argparse error otherwise."""
    name = text if "/" in text else f"geoguessr/{text}"
    if name not in DATASETS:
        raise argparse.ArgumentTypeError(
            f"invalid choice: {text!r} (choose from {', '.join(DATASETS)})"
        )
    return name


def run_build(args):
    from keras_geo import datasets

    report = datasets.build(
        args.dataset,
        manual_dir=args.manual_dir,
        data_dir=args.data_dir,
        overwrite=args.overwrite,
        num_workers=args.num_workers,
    )
    print(format_summary(args.dataset, report))


def run_info(args):
    from keras_geo import data_report, paths

    paths.check_writable(args.out, "--out")

    result = data_report.write_info(args.dataset, args.data_dir, args.out)
    for key in ("counts", "class_distribution", "samples"):
        print(f"wrote {result[key]}")


def format_summary(name, report) -> str:
    """The per-split table and the skipped/excluded counts of a build report."""
    per_country = report.get("per_country", {})
    lines = [
        f"{name} in {report['path']}",
        f"{'split':<12}{'images':>9}{'countries':>11}",
    ]
    for split, count in report["num_examples"].items():
        countries = len(per_country.get(split, {})) if per_country else "?"
        lines.append(f"{split:<12}{count:>9}{countries:>11}")
    lines.append(f"{'total':<12}{sum(report['num_examples'].values()):>9}")
    skipped = report.get("skipped_counts", {})
    detail = ", ".join(f"{reason}: {n}" for reason, n in skipped.items())
    lines.append(f"skipped files: {sum(skipped.values())}" + (f" ({detail})" if detail else ""))
    excluded = report.get("excluded_folders", {})
    if excluded:
        lines.append(f"excluded folders (not in this config): {len(excluded)}")
    if skipped or excluded:
        lines.append(f"details: {report['path']}/build_report.json")
    return "\n".join(lines)
