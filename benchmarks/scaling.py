"""Usage: `python benchmarks/scaling.py --work-dir WORK/scaling-15 --per-country 15 \\
    --factors 1,2,4 --image-size 112 --seconds 8`

Build time, input throughput and epoch time at 1x/2x/4x.

For each factor f, a Kaggle-layout folder of `20 * f * per_country` fake
1536x662 frames (`fake_kaggle`) is built into its own TFDS data dir with
`keras_geo.datasets.build` (timed), then `bench input` runs on it and one
frozen-phase training epoch through the backbone (`model.fit` over
`pipeline.train_dataset`, the image path) is timed. The splits round per
country (each keeps at least one validation and one test image), so the
train split grows a little faster than the data: compare the epoch time with
the train-split ratio. Fixed costs (TFDS
set-up, graph tracing: a warm-up step runs first) make the small sizes
relatively dearer, so times should grow at most linearly and throughput
should stay flat.
"""

import pathlib
import sys
import time

import common
from fake_kaggle import FRAME_SIZE, TOP20, make_fake_kaggle

from keras_geo.bench.input import run_input
from keras_geo.bench.timing import epoch_timer


def fake_folder(work_dir, per_country, *, frame_size=FRAME_SIZE, link_from=None):
    """`work_dir/kaggle-<per_country>/compressed_dataset`, generated once."""
    return make_fake_kaggle(
        pathlib.Path(work_dir) / f"kaggle-{per_country}",
        images_per_country=per_country,
        size=frame_size,
        link_from=link_from,
    )


def build_fake(work_dir, per_country, *, frame_size=FRAME_SIZE, link_from=None):
    """Generates (once) and builds `geoguessr/top20` from fake frames.

    Returns:
        (data_dir, build seconds, build report).
    """
    from keras_geo import datasets

    work = pathlib.Path(work_dir)
    manual = fake_folder(work, per_country, frame_size=frame_size, link_from=link_from)
    data_dir = work / f"tfds-{per_country}"
    start = time.perf_counter()
    report = datasets.build("top20", manual_dir=manual, data_dir=data_dir, overwrite=True)
    return str(data_dir), time.perf_counter() - start, report


def frozen_epoch_seconds(model, data_dir, *, image_size, batch_size):
    """Times the second frozen epoch through the backbone on the train split.

    The first epoch traces the train step (also for the last, partial
    batch), a one-off cost per run that would blur the comparison.
    """
    from keras_geo import datasets, pipeline

    train = pipeline.train_dataset(
        datasets.load_split("geoguessr/top20", "train", data_dir=data_dir),
        image_size=image_size,
        batch_size=batch_size,
        seed=0,
    )
    timer = epoch_timer()
    model.fit(train, epochs=2, callbacks=[timer], verbose=0, shuffle=False)
    return timer.seconds[-1]


def run_scaling(
    work_dir,
    *,
    per_country=4,
    factors=(1, 2, 4),
    frame_size=FRAME_SIZE,
    image_size=224,
    batch_size=32,
    seconds=5.0,
):
    """Measures every factor; returns a dict with `rows` (one per factor)."""
    from keras_geo.bench.train import build_for_phase

    model = build_for_phase("frozen", num_classes=len(TOP20), image_size=image_size)
    largest = fake_folder(work_dir, per_country * max(factors), frame_size=frame_size)
    rows = []
    for factor in factors:
        data_dir, build_s, report = build_fake(
            work_dir, per_country * factor, frame_size=frame_size, link_from=largest
        )
        measured = run_input(
            "geoguessr/top20",
            data_dir=data_dir,
            batch_size=batch_size,
            image_size=image_size,
            seconds=seconds,
        )
        rows.append(
            {
                "factor": factor,
                "images": sum(report["num_examples"].values()),
                "train_images": report["num_examples"]["train"],
                "build_s": build_s,
                "input_images_per_second": measured["images_per_second"],
                "epoch_s": frozen_epoch_seconds(
                    model, data_dir, image_size=image_size, batch_size=batch_size
                ),
            }
        )
    _add_ratios(rows)
    return {
        "benchmark": "scaling",
        "frame_size": list(frame_size),
        "image_size": image_size,
        "rows": rows,
        "images_per_second": rows[-1]["input_images_per_second"],
    }


def _add_ratios(rows):
    """Adds each time's ratio to the first row's, next to the data ratio."""
    first = rows[0]
    for row in rows:
        row["data_ratio"] = row["images"] / first["images"]
        row["build_ratio"] = row["build_s"] / first["build_s"]
        row["train_ratio"] = row["train_images"] / first["train_images"]
        row["epoch_ratio"] = row["epoch_s"] / first["epoch_s"]
        row["input_ratio"] = row["input_images_per_second"] / first["input_images_per_second"]


def main(argv=None):
    p = common.parser(__doc__, sizes=(224, 32))
    p.add_argument("--work-dir", required=True, help="folder for fake frames and datasets")
    p.add_argument(
        "--per-country",
        type=common.positive_int,
        default=4,
        help="images per country at 1x (default %(default)s)",
    )
    p.add_argument("--factors", default="1,2,4", help="data multiples (default %(default)s)")
    p.add_argument("--frame-size", type=common.frame_size, default=(1536, 662), help="WxH")
    p.set_defaults(seconds=5.0)
    args = p.parse_args(argv)
    common.report(
        args,
        run_scaling,
        row_line="{factor}x: {images} files, build {build_s:.1f} s, "
        "input {input_images_per_second:.1f} images/s, epoch {epoch_s:.1f} s",
        factors=common.factors(args.factors),
    )


if __name__ == "__main__":
    sys.exit(common.run(main))
