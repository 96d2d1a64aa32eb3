"""Benchmark the bundled model's CPU latency and throughput next to ResNet50 at 224 px.

    python benchmarks/bundled_model.py [--images 32] [--repeats 3] [--out FILE]

Measures in one run, for each model as a `keras-geo export` SavedModel (the
form `predict` and the app load):

- the bundled model (`keras_geo.bundled`, what `keras-geo predict` and
  `keras-geo app` use without `--model`);
- the paper's ResNet50 + 20-country head at 224 px (random weights: speed does
  not depend on them), exported the same way: the baseline.

Rows, each warm (a few calls first) and the best of `--repeats` alternating
rounds (other jobs on a shared machine only slow a round down):

- `predict call`: one 1536x662 JPEG frame through `predict`'s model call
  (`keras_geo.predict.probabilities_of`: header check, decode, resize,
  model), median latency in ms;
- `JSON API`: one frame per `POST /api/predict` to `keras-geo app` started as
  a separate process, one client, median latency in ms;
- `batch 32`: 32 frames in one call of the export's `serving_default`,
  images/s.

Ratios are the bundled model's against ResNet50's, measured in the same run.
"""

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time

import app as app_bench  # benchmarks/app.py (the script's folder is on sys.path)

from keras_geo.cli.main import main as keras_geo_main


def export_resnet50(folder):
    """The paper's model (random weights) exported as `keras-geo export` writes it."""
    run_dir = app_bench.save_run(folder / "run", 224)
    keras_geo_main(["export", "--model", str(run_dir), "--out", str(folder / "resnet50")])
    return folder / "resnet50"


def predict_latency_ms(predictor, images):
    from keras_geo import predict

    for data in images[:3]:
        predict.probabilities_of(predictor, data)
    times = []
    for data in images:
        start = time.perf_counter()
        predict.probabilities_of(predictor, data)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def api_latency_ms(model, images):
    process, url = app_bench.start_app(model, max_batch=1)
    try:
        result = app_bench.measure_app(process, url, images, clients=1)
    finally:
        process.terminate()
        process.wait(timeout=60)
    return result["p50_ms"]


def batch_images_per_s(predictor, images, batch=32):
    chunk = (images * (batch // len(images) + 1))[:batch]
    predictor.probabilities_batch(chunk)  # Warm: traces the batch shape.
    start = time.perf_counter()
    predictor.probabilities_batch(chunk)
    return batch / (time.perf_counter() - start)


def measure(models, images, repeats):
    from keras_geo import predict

    predictors = {name: predict.load_predictor(path) for name, path in models.items()}
    best = {name: {} for name in models}
    for _ in range(repeats):
        for name, path in models.items():
            row = {
                "predict_ms": predict_latency_ms(predictors[name], images),
                "api_ms": api_latency_ms(path, images),
                "batch32_images_per_s": batch_images_per_s(predictors[name], images),
            }
            for key, value in row.items():
                better = min if key.endswith("_ms") else max
                best[name][key] = better(value, best[name].get(key, value))
    return best


def table(best, sizes, baseline):
    lines = [
        "| model | size MB | predict call, ms | x | JSON API, ms | x | batch 32, images/s | x |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base = best[baseline]
    for name, row in best.items():
        lines.append(
            f"| {name} | {sizes[name]:.1f} "
            f"| {row['predict_ms']:.1f} | {base['predict_ms'] / row['predict_ms']:.2f} "
            f"| {row['api_ms']:.1f} | {base['api_ms'] / row['api_ms']:.2f} "
            f"| {row['batch32_images_per_s']:.1f} "
            f"| {row['batch32_images_per_s'] / base['batch32_images_per_s']:.2f} |"
        )
    return "\n".join(lines)


def folder_mb(path):
    return sum(f.stat().st_size for f in pathlib.Path(path).rglob("*") if f.is_file()) / 2**20


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32, help="frames per latency row")
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds; best kept")
    parser.add_argument("--out", default=None, help="also write the Markdown here")
    args = parser.parse_args(argv)
    from keras_geo import bundled

    images = app_bench.frames(args.images)
    load_start = os.getloadavg()[0]
    baseline = "ResNet50 224 px (baseline)"
    with tempfile.TemporaryDirectory(prefix="keras-geo-bench-bundled-") as tmp:
        resnet = export_resnet50(pathlib.Path(tmp))
        models = {"bundled model": None, baseline: resnet}
        sizes = {"bundled model": folder_mb(bundled.path()), baseline: folder_mb(resnet)}
        best = measure(models, images, args.repeats)
    text = (
        f"Machine: {app_bench.machine()}; 1-minute load average {load_start:.1f} at the "
        f"start, {os.getloadavg()[0]:.1f} at the end. {args.images} synthetic 1536x662 JPEG "
        f"frames per latency row, best of {args.repeats} alternating rounds; x: speed-up "
        "over ResNet50 at 224 px (higher is faster).\n\n" + table(best, sizes, baseline)
    )
    print(text)
    if args.out:
        pathlib.Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
