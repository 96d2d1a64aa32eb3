"""Past one machine, measured on this one: parallel build and the tf.data service.

    python benchmarks/distributed.py [--work-dir DIR] [--out benchmarks/distributed.md]

1. Build throughput of fake 1536x662 Kaggle frames (`benchmarks/fake_kaggle.py`)
   with `--num-workers 1` and with every core, alternately, best of
   `--repeats`, on the largest folder (`--compare-factor`, default the
   largest of `--factors`: 4 x 15 frames per country = 1,200 frames); then
   build time with every core at 1x/2x/4x the data. Beside it, the machine's
   own ceiling: the same per-frame work (`frames.convert_frame` on frames
   already in memory, no TFDS) in 1 process and in every core's process at
   once, which no build can beat.
2. Training images/s of the fine-tuning phase (conv5 + head, weights none,
   `--image-size` px) with the local input pipeline and through a tf.data
   service (an in-process dispatcher and one worker on this same machine),
   alternately, best of `--repeats`; the second epoch of each fit is timed
   (the first traces the graph).

Every figure is also given per CPU-second (user + system time of this
process and of every process below it), which does not depend on what else
runs on a shared machine, and as the cores the job got (CPU-s / wall-s).
Writes a Markdown table and the raw JSON next to it.
"""

import argparse
import json
import os
import pathlib
import shutil
import threading
import time

# Only light imports at module level: build workers start from a fork
# server that re-imports this script (as `__mp_main__`) in every worker.


class _TreeCpu:
    """CPU seconds of this process and of every process below it, ever seen.

    Build workers are children of multiprocessing's fork server, so
    `getrusage(RUSAGE_CHILDREN)` never sees them: /proc is sampled every
    0.1 s instead (a worker's last 0.1 s may be missed).
    """

    def __init__(self):
        self.seen = {}
        thread = threading.Thread(target=self._loop, daemon=True)
        thread.start()

    def _loop(self):
        while True:
            self._sample(os.getpid())
            time.sleep(0.1)

    def _sample(self, pid):
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                children = [int(child) for child in f.read().split()]
        except OSError:
            return
        for child in children:
            try:
                with open(f"/proc/{child}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            self.seen[child] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            self._sample(child)

    def __call__(self):
        self._sample(os.getpid())
        return time.process_time() + sum(self.seen.values())


_tree_cpu = None  # Started on first use: workers re-import this script, and need none.


def _cpu_seconds():
    global _tree_cpu
    if _tree_cpu is None:
        _tree_cpu = _TreeCpu()
    return _tree_cpu()


def _timed(function):
    wall, cpu = time.perf_counter(), _cpu_seconds()
    result = function()
    return result, time.perf_counter() - wall, _cpu_seconds() - cpu


def _build(manual_dir, data_dir, num_workers):
    from keras_geo import datasets

    shutil.rmtree(data_dir, ignore_errors=True)
    return _timed(
        lambda: datasets.build(
            "top20", manual_dir=manual_dir, data_dir=data_dir, num_workers=num_workers
        )
    )


def build_benchmark(work_dir, per_country, factors, repeats, cores, compare_factor=None):
    """Workers 1 vs `cores` at `compare_factor`, then `cores` at each factor."""
    from fake_kaggle import make_fake_kaggle

    compare_factor = compare_factor or max(factors)
    work_dir = pathlib.Path(work_dir)
    largest = make_fake_kaggle(
        work_dir / f"kaggle-{per_country * max(factors + [compare_factor])}",
        images_per_country=per_country * max(factors + [compare_factor]),
    )
    folders = {
        f: make_fake_kaggle(
            work_dir / f"kaggle-{per_country * f}",
            images_per_country=per_country * f,
            link_from=largest,
        )
        for f in sorted(set(factors + [compare_factor]))
    }
    _build(folders[factors[0]], work_dir / "tfds-build", cores)  # warm-up: one-off costs
    best = {}
    for _ in range(repeats):
        for workers in (1, cores):
            report, wall, cpu = _build(folders[compare_factor], work_dir / "tfds-build", workers)
            images = sum(report["num_examples"].values())
            row = {"workers": workers, "images": images, "wall_s": wall, "cpu_s": cpu}
            if workers not in best or wall < best[workers]["wall_s"]:
                best[workers] = row
    scaling = []
    for factor in factors:
        report, wall, cpu = _build(folders[factor], work_dir / "tfds-build", cores)
        images = sum(report["num_examples"].values())
        scaling.append(
            {"factor": factor, "workers": cores, "images": images, "wall_s": wall, "cpu_s": cpu}
        )
    return {
        "workers": [best[1], best[cores]],
        "scaling": scaling,
        "ceiling": convert_benchmark(folders[factors[0]], repeats, cores),
    }


def convert_benchmark(folder, repeats, cores):
    """The per-frame work alone, frames in memory: 1 process vs `cores` at once.

    What the cores themselves give: a build, which also reads, writes and
    shuffles, cannot scale better than this.
    """
    import functools

    from tfds_geoguessr.geoguessr import frames, limits, parallel

    data = [(path.read_bytes(), None) for path in sorted(pathlib.Path(folder).rglob("*.jpg"))]
    convert = functools.partial(frames.convert_frame, size=224, max_pixels=limits.max_pixels())
    list(parallel.ordered_map(convert, data[: 4 * cores], cores))  # warm-up
    best = {}
    for _ in range(repeats):
        for workers in (1, cores):
            converted, wall, cpu = _timed(
                lambda w=workers: list(parallel.ordered_map(convert, data, w))
            )
            row = {"workers": workers, "images": len(converted), "wall_s": wall, "cpu_s": cpu}
            if workers not in best or wall < best[workers]["wall_s"]:
                best[workers] = row
    return [best[1], best[cores]]


def train_benchmark(work_dir, per_country, image_size, batch_size, repeats):
    """Fine-tuning epoch images/s, local input vs the tf.data service."""
    import tensorflow as tf
    from fake_kaggle import make_fake_kaggle

    from keras_geo import datasets, pipeline
    from keras_geo.bench.timing import epoch_timer
    from keras_geo.bench.train import build_for_phase

    manual = make_fake_kaggle(
        pathlib.Path(work_dir) / f"kaggle-{per_country}", images_per_country=per_country
    )
    data_dir = pathlib.Path(work_dir) / "tfds-train"
    if not datasets.builder("top20", data_dir).is_prepared():
        datasets.build("top20", manual_dir=manual, data_dir=data_dir)
    service = tf.data.experimental.service
    dispatcher = service.DispatchServer(service.DispatcherConfig(port=0))
    address = dispatcher.target.split("://")[1]
    worker = service.WorkerServer(service.WorkerConfig(dispatcher_address=address, port=0))
    model = build_for_phase("finetune", image_size=image_size)

    def stream(use_service):
        split = datasets.load_split("top20", "train", data_dir=data_dir, for_service=use_service)
        ds = pipeline.train_dataset(split, image_size=image_size, batch_size=batch_size, seed=0)
        return pipeline.through_service(ds, dispatcher.target) if use_service else ds

    images = datasets.builder("top20", data_dir).info.splits["train"].num_examples
    best = {}
    for _ in range(repeats):
        for use_service in (False, True):
            timer = epoch_timer()
            cpu = epoch_timer(clock=_cpu_seconds)  # The service runs in-process: counted.
            model.fit(stream(use_service), epochs=2, callbacks=[timer, cpu], verbose=0)
            name = "tf.data service" if use_service else "local"
            row = {"input": name, "images": images, "wall_s": timer.seconds[-1]}
            row["cpu_s"] = cpu.seconds[-1]  # The timed (second) epoch only, like wall_s.
            if name not in best or row["wall_s"] < best[name]["wall_s"]:
                best[name] = row
    del worker  # stops with the process
    return {"rows": [best["local"], best["tf.data service"]], "image_size": image_size}


def markdown(result):
    lines = [
        f"Measured {result['date']} on {result['cores']} cores ({result['cpu']}); "
        f"1-minute load average {result['load_start']:.2f} at the start, "
        f"{result['load_end']:.2f} at the end.",
    ]
    if "build" in result:
        lines += _build_lines(result["build"])
    if "train" in result:
        lines += _train_lines(result["train"])
    return "\n".join(lines) + "\n"


def _build_lines(build):
    one, many = build["workers"]
    lines = [
        "",
        "| build, 1536x662 frames | images | wall s | images/s | images per CPU-s "
        "| cores used | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [_ratio_row(f"`--num-workers {row['workers']}`", row, one) for row in (one, many)]
    if "ceiling" in build:
        first = build["ceiling"][0]
        lines += [
            "",
            "| ceiling: per-frame work only, in memory, no TFDS | images | wall s | images/s "
            "| images per CPU-s | cores used | ratio |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            _ratio_row(f"{row['workers']} process(es)", row, first) for row in build["ceiling"]
        ]
    lines += [
        "",
        f"| build with {many['workers']} workers | images | wall s | data ratio | time ratio |",
        "|---|---|---|---|---|",
    ]
    first = build["scaling"][0]
    for row in build["scaling"]:
        lines.append(
            f"| {row['factor']}x | {row['images']} | {row['wall_s']:.1f} | "
            f"{row['images'] / first['images']:.2f} | {row['wall_s'] / first['wall_s']:.2f} |"
        )
    return lines


def _ratio_row(name, row, baseline):
    return (
        f"| {name} | {row['images']} | {row['wall_s']:.1f} | "
        f"{row['images'] / row['wall_s']:.1f} | {row['images'] / row['cpu_s']:.1f} | "
        f"{row['cpu_s'] / row['wall_s']:.2f} | {baseline['wall_s'] / row['wall_s']:.2f}x |"
    )


def _train_lines(train):
    lines = [
        "",
        f"| fine-tuning epoch, {train['image_size']} px | images | wall s | images/s "
        "| images per CPU-s | cores used | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    local = train["rows"][0]
    return lines + [_ratio_row(row["input"], row, local) for row in train["rows"]]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", default="/tmp/keras-geo-bench-distributed")
    parser.add_argument("--out", default="benchmarks/distributed.md")
    parser.add_argument("--per-country", type=int, default=15, help="1x frames per country")
    parser.add_argument("--factors", default="1,2,4")
    parser.add_argument(
        "--compare-factor",
        type=int,
        default=None,
        help="data factor of the 1-worker vs all-cores build (default: the largest factor)",
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--parts", default="build,train", help="build, train or both")
    args = parser.parse_args()
    from keras_geo.bench.timing import cpu_model
    from tfds_geoguessr.geoguessr.parallel import default_num_workers

    cores = default_num_workers()
    factors = [int(f) for f in args.factors.split(",")]
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cores": cores,
        "cpu": cpu_model(),
        "load_start": os.getloadavg()[0],
    }
    parts = args.parts.split(",")
    if "build" in parts:
        result["build"] = build_benchmark(
            args.work_dir, args.per_country, factors, args.repeats, cores, args.compare_factor
        )
    if "train" in parts:
        result["train"] = train_benchmark(
            args.work_dir, args.per_country, args.image_size, args.batch_size, args.repeats
        )
    result["load_end"] = os.getloadavg()[0]
    pathlib.Path(args.out).write_text(markdown(result))
    pathlib.Path(args.out).with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))


if __name__ == "__main__":
    main()
