"""Usage: `python benchmarks/report.py --work-dir WORK --out benchmarks/results.md`

Every benchmark in one run, written as Markdown tables.

Each benchmark runs in its own process (`keras-geo bench input|train` or a
script of this folder, with `--json`), so thread pools, the dtype policy and the baseline's
worker processes never share state. Every ratio divides two figures of this
same run on this same machine. `benchmarks/run_all.sh` calls this.
"""

import argparse
import datetime
import json
import os
import pathlib
import subprocess
import sys

import common

from keras_geo.bench.timing import machine

FULL = {
    "per_country": 5,
    "seconds": 15,
    "repeats": 2,
    "image_size": 224,
    "frame": "1536x662",
    "train_batch": 16,
    "train_steps": 3,
    "cache_images": 128,
    "scaling_seconds": 8,
    "scaling_image_size": 112,  # The growth's shape, not the size, is the claim.
}
QUICK = {
    "per_country": 3,
    "seconds": 1,
    "repeats": 1,
    "image_size": 32,
    "frame": "160x70",
    "train_batch": 2,
    "train_steps": 1,
    "cache_images": 8,
    "scaling_seconds": 1,
    "scaling_image_size": 32,
}


# Benchmarks of the package (`keras-geo bench NAME`) and scripts beside this one.
_PACKAGE_BENCHMARKS = ("input", "train")
_SCRIPTS = {
    "baseline": "baseline.py",
    "decode": "storage.py",
    "cache": "cache.py",
    "scaling": "scaling.py",
}
_HERE = pathlib.Path(__file__).resolve().parent


def bench(args, work_dir, name):
    """Runs benchmark `args[0]` with `args[1:] --json`; returns (and keeps) its JSON record."""
    out = pathlib.Path(work_dir) / f"{name}.json"
    if args[0] in _PACKAGE_BENCHMARKS:
        command = [sys.executable, "-m", "keras_geo.cli.main", "bench", *args]
    else:
        command = [sys.executable, str(_HERE / _SCRIPTS[args[0]]), *args[1:]]
    command += ["--json"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    log = pathlib.Path(work_dir) / f"{name}.log"
    with open(out, "w") as stdout, open(log, "w") as stderr:
        done = subprocess.run(command, stdout=stdout, stderr=stderr, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed; see {log}")
    return json.loads(out.read_text())


def measure(work_dir, sizes):
    """Runs every benchmark; returns {name: record or list of records}."""
    work = pathlib.Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    p, size = sizes["per_country"], str(sizes["image_size"])
    results = {
        "scaling": bench(
            [
                "scaling",
                "--work-dir",
                str(work),
                "--per-country",
                str(p),
                "--factors",
                "1,2,4",
                "--frame-size",
                sizes["frame"],
                "--image-size",
                str(sizes["scaling_image_size"]),
                "--seconds",
                str(sizes["scaling_seconds"]),
            ],
            work,
            "scaling",
        )
    }
    manual, data_dir = work / f"kaggle-{4 * p}", work / f"tfds-{4 * p}"
    seconds = str(sizes["seconds"])
    results["baseline"], results["input"] = [], []
    for repeat in range(sizes["repeats"]):  # Alternate, so load hits both alike.
        results["baseline"].append(
            bench(
                [
                    "baseline",
                    "--manual-dir",
                    str(manual),
                    "--seconds",
                    seconds,
                    "--image-size",
                    size,
                ],
                work,
                f"baseline-{repeat}",
            )
        )
        results["input"].append(
            bench(
                [
                    "input",
                    "--dataset",
                    "geoguessr/top20",
                    "--data-dir",
                    str(data_dir),
                    "--seconds",
                    seconds,
                    "--image-size",
                    size,
                ],
                work,
                f"input-{repeat}",
            )
        )
    results["decode"] = bench(
        [
            "decode",
            "--frame-size",
            sizes["frame"],
            "--image-size",
            size,
            "--seconds",
            str(max(1, sizes["seconds"] // 3)),
        ],
        work,
        "decode",
    )
    # "full": every layer but BatchNorm trains, the baseline of "finetune".
    phases = {"frozen": ["frozen"], "finetune": ["finetune"]}
    phases["full"] = ["finetune", "--finetune-stages", "all"]
    for phase, flags in phases.items():
        results[f"train-{phase}"] = bench(
            [
                "train",
                "--phase",
                *flags,
                "--image-size",
                size,
                "--batch-size",
                str(sizes["train_batch"]),
                "--steps",
                str(sizes["train_steps"]),
            ],
            work,
            f"train-{phase}",
        )
    results["cache"] = bench(
        [
            "cache",
            "--images",
            str(sizes["cache_images"]),
            "--image-size",
            size,
            "--work-dir",
            str(work / "cache"),
        ],
        work,
        "cache",
    )
    results["load_average"] = [load_before[0], os.getloadavg()[0]]
    return results


def _best(records, key="images_per_second"):
    return max(record[key] for record in records)


def _all(records):
    return ", ".join(f"{record['images_per_second']:.1f}" for record in records)


def render(results, sizes):
    """The Markdown tables (a string) for `results` from `measure`."""
    info = machine()
    lines = [
        f"Measured {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} on "
        f"{info['cores']} cores ({info['cpu']}); device: {results['train-full']['device']}; "
        f"1-minute load average {results['load_average'][0]:.1f} at the start, "
        f"{results['load_average'][1]:.1f} at the end.",
        f"Image size {sizes['image_size']} px, fake frames {sizes['frame']} "
        f"(`benchmarks/fake_kaggle.py`).",
        "",
    ]
    base, fast = _best(results["baseline"]), _best(results["input"])
    base_cpu = _best(results["baseline"], "images_per_cpu_second")
    fast_cpu = _best(results["input"], "images_per_cpu_second")
    lines += [
        "### Input pipeline (best of alternating runs)",
        "",
        "| pipeline | images/s (best) | all runs | images per CPU-second (best) |",
        "|---|---:|---|---:|",
        f"| paper baseline (PIL, 1 worker/core, full frames) | {base:.1f} | "
        f"{_all(results['baseline'])} | {base_cpu:.1f} |",
        f"| keras-geo (TFDS 224x224 + tf.data) | {fast:.1f} | {_all(results['input'])} | "
        f"{fast_cpu:.1f} |",
        f"| **ratio** (target >= 3x, aim 5x) | **{fast / base:.1f}x** | | "
        f"**{fast_cpu / base_cpu:.1f}x** |",
        "",
    ]
    lines += _decode_table(results["decode"])
    lines += _train_table(results)
    lines += _cache_table(results["cache"])
    lines += _scaling_table(results["scaling"])
    return "\n".join(lines) + "\n"


def _decode_table(record):
    lines = [
        "### Stored image size: decode + resize in tf.data",
        "",
        "| frames stored as | KB/file | images/s | images per CPU-second |",
        "|---|---:|---:|---:|",
    ]
    names = {
        "full": "full frame JPEG",
        "full-dct2": "full frame, decoded at 1/2 (DCT)",
        "stored": "224x224 JPEG (the builder's choice)",
    }
    for row in record["rows"]:
        lines.append(
            f"| {names[row['variant']]} | {row['mean_kb']:.1f} | {row['images_per_second']:.1f} | "
            f"{row['images_per_cpu_second']:.1f} |"
        )
    lines += [f"| **stored vs full** (CPU) | | | **{record['stored_vs_full']:.1f}x** |", ""]
    return lines


def _train_table(results):
    lines = [
        "### Training step (random tensors, no input pipeline)",
        "",
        "| phase | trainable parameters | images/s | images per CPU-second |",
        "|---|---:|---:|---:|",
    ]
    for phase in ("frozen", "finetune", "full"):
        record = results[f"train-{phase}"]
        lines.append(
            f"| {phase} | {record['trainable_parameters']:,} | "
            f"{record['images_per_second']:.2f} | {record['images_per_cpu_second']:.2f} |"
        )
    fine, full = results["train-finetune"], results["train-full"]
    wall = fine["images_per_second"] / full["images_per_second"]
    cpu = fine["images_per_cpu_second"] / full["images_per_cpu_second"]
    lines += [f"| **finetune vs full** | | **{wall:.2f}x** | **{cpu:.2f}x** |", ""]
    return lines


def _cache_table(record):
    return [
        "### Frozen phase: one epoch",
        "",
        "| frozen epoch of N images | seconds |",
        "|---|---:|",
        f"| through the backbone (images, N={record['images']}) | "
        f"{record['backbone_epoch_s']:.2f} |",
        f"| from cached features | {record['cached_epoch_s']:.3f} |",
        f"| **ratio** | **{record['speedup']:.0f}x** (target >= 20x) |",
        f"| one-off: computing the features | {record['extract_s']:.2f} |",
        "",
    ]


def _scaling_table(record):
    lines = [
        f"### Scaling with the data (model input {record['image_size']} px)",
        "",
        "| data | images | train images | build s | input images/s | frozen epoch s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in record["rows"]:
        lines.append(
            f"| {row['factor']}x | {row['images']} | {row['train_images']} | "
            f"{row['build_s']:.1f} | {row['input_images_per_second']:.1f} | {row['epoch_s']:.1f} |"
        )
    lines += [
        "",
        "| data | build ratio (vs data) | epoch ratio (vs train images) |",
        "|---|---:|---:|",
    ]
    for row in record["rows"]:
        lines.append(
            f"| {row['factor']}x | {row['build_ratio']:.2f} ({row['data_ratio']:.0f}) | "
            f"{row['epoch_ratio']:.2f} ({row['train_ratio']:.2f}) |"
        )
    return lines + [""]


def run_report(work_dir, out, *, quick=False):
    """Measures everything and writes the Markdown tables to `out`."""
    sizes = QUICK if quick else FULL
    results = measure(work_dir, sizes)
    (pathlib.Path(work_dir) / "results.json").write_text(json.dumps(results, indent=2))
    pathlib.Path(out).write_text(render(results, sizes))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--work-dir", required=True, help="folder for fake frames and datasets")
    p.add_argument("--out", required=True, help="Markdown file for the tables")
    p.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    args = p.parse_args(argv)
    run_report(args.work_dir, args.out, quick=args.quick)
    print(f"tables written to {args.out}")


if __name__ == "__main__":
    sys.exit(common.run(main))
