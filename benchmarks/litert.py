"""Usage: `python benchmarks/litert.py [--image-size 224] [--calls 20] [--repeats 3] [--json]`

CPU latency and file size of a model's exports, in one run: the SavedModel
of `keras-geo export` (the baseline) beside the LiteRT files of
`keras-geo export --format tflite` (float32, float16 and dynamic-range int8
weights).

The model is the paper's (ResNet50 + a 20-country head, `--backbone` to
change it) at `--image-size` px with random weights: neither speed nor size
depends on the weights. Per export:

- size: bytes on disk (the SavedModel: its whole directory);
- model call: one image `[1, S, S, 3]` already at the model size, the
  median of `--calls` calls after 3 warm-up calls (SavedModel: its
  `serve_pixels` signature with TensorFlow; LiteRT: `serving_default` with
  `ai-edge-litert`, one thread per CPU, as `keras-geo predict` runs it), wall
  and CPU milliseconds (this process, all its threads);
- predict: `keras_geo.predict.predict_bytes` on a 1536x662 JPEG, the median
  of `--calls`: decoding and the antialiased resize (TensorFlow, the same for
  every export) plus the model call: what `keras-geo predict` costs per image.

The exports are measured in turn, `--repeats` rounds; each keeps its best
round (other jobs on a shared machine only ever slow a round down). Ratios
are against the SavedModel of the same run.
"""

import io
import os
import pathlib
import statistics
import sys
import tempfile
import time

import common
import numpy as np

from keras_geo import backbones

EXPORTS = ("SavedModel", "LiteRT float32", "LiteRT float16", "LiteRT dynamic int8")
QUANTIZE = {"LiteRT float32": "none", "LiteRT float16": "float16", "LiteRT dynamic int8": "dynamic"}


def write_exports(folder, *, image_size, backbone):
    """Writes the SavedModel and the three LiteRT files of one model; returns their paths."""
    from keras_geo import export, litert
    from keras_geo.model import build_model
    from tfds_geoguessr.geoguessr import synthetic

    names = list(synthetic.COUNTRIES)
    model = build_model(len(names), backbone=backbone, image_size=image_size, weights=None)
    paths = {"SavedModel": folder / "saved_model"}
    export.export_saved_model(model, names, paths["SavedModel"], image_size=image_size)
    for name, quantize in QUANTIZE.items():
        paths[name] = folder / f"geo-{quantize}.tflite"
        litert.export_litert(model, names, paths[name], image_size=image_size, quantize=quantize)
    return paths


def model_call(name, path, image_size):
    """A function that runs the export once on one image at the model size."""
    pixels = np.random.default_rng(0).integers(0, 256, (1, image_size, image_size, 3))
    if name == "SavedModel":
        import tensorflow as tf

        serve = tf.saved_model.load(str(path)).signatures["serve_pixels"]
        images = tf.constant(pixels.astype("uint8"))
        return lambda: serve(images=images)["probabilities"].numpy()
    from ai_edge_litert.interpreter import Interpreter

    threads = len(os.sched_getaffinity(0))  # As `keras-geo predict` runs a .tflite file.
    runner = Interpreter(model_path=str(path), num_threads=threads).get_signature_runner()
    images = pixels.astype("float32")
    return lambda: runner(images=images)["probabilities"]


def frame():
    """A 1536x662 JPEG (the Kaggle frame size) of a synthetic scene."""
    from PIL import Image

    from tfds_geoguessr.geoguessr import synthetic

    scene = synthetic.draw_scene("Japan", np.random.default_rng(0), 256)
    buffer = io.BytesIO()
    Image.fromarray(scene).resize((1536, 662)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def timed(function, calls, warmup=3):
    """Median wall and CPU milliseconds of one call, after `warmup` calls."""
    for _ in range(warmup):
        function()
    wall, cpu = [], []
    for _ in range(calls):
        start, start_cpu = time.perf_counter(), time.process_time()
        function()
        wall.append(1000 * (time.perf_counter() - start))
        cpu.append(1000 * (time.process_time() - start_cpu))
    return statistics.median(wall), statistics.median(cpu)


def size_mb(path):
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 2**20


def run_litert(*, image_size=224, calls=20, repeats=3, backbone="resnet50"):
    """Exports once, then measures every export `repeats` times in turn; returns the record."""
    from keras_geo import predict
    from keras_geo.bench.train import device_description

    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="keras-geo-bench-litert-") as tmp:
        start = time.perf_counter()
        paths = write_exports(pathlib.Path(tmp), image_size=image_size, backbone=backbone)
        export_s = time.perf_counter() - start
        calls_of = {name: model_call(name, path, image_size) for name, path in paths.items()}
        predictors = {name: predict.load_predictor(path) for name, path in paths.items()}
        jpeg = frame()
        best = {}
        for _ in range(repeats):
            for name in EXPORTS:
                call_ms, call_cpu_ms = timed(calls_of[name], calls)
                predict_ms, _ = timed(
                    lambda p=predictors[name]: predict.predict_bytes(p, jpeg, file="f"), calls
                )
                old = best.get(name, {})
                best[name] = {
                    "export": name,
                    "size_mb": size_mb(paths[name]),
                    "call_ms": min(call_ms, old.get("call_ms", call_ms)),
                    "call_cpu_ms": min(call_cpu_ms, old.get("call_cpu_ms", call_cpu_ms)),
                    "predict_ms": min(predict_ms, old.get("predict_ms", predict_ms)),
                }
    base = best["SavedModel"]
    rows = []
    for name in EXPORTS:
        row = best[name]
        row["smaller"] = base["size_mb"] / row["size_mb"]
        row["call_speedup"] = base["call_ms"] / row["call_ms"]
        row["cpu_ratio"] = base["call_cpu_ms"] / row["call_cpu_ms"]
        row["predict_speedup"] = base["predict_ms"] / row["predict_ms"]
        rows.append(row)
    return {
        "benchmark": "litert",
        "device": device_description(),
        "backbone": backbone,
        "image_size": image_size,
        "calls": calls,
        "repeats": repeats,
        "export_s": export_s,
        "load_start": load_start,
        "load_end": os.getloadavg()[0],
        "rows": rows,
        "images_per_second": 1000 / best["LiteRT float32"]["call_ms"],
    }


def main(argv=None):
    p = common.parser(__doc__, seconds=False)
    p.add_argument("--image-size", type=common.image_size, default=224)
    p.add_argument("--calls", type=common.positive_int, default=20, help="timed calls a row")
    p.add_argument("--repeats", type=common.positive_int, default=3, help="rounds; best kept")
    p.add_argument("--backbone", choices=backbones.NAMES, default="resnet50")
    args = p.parse_args(argv)
    if not args.json:
        print("| export | size MB | x smaller | model call ms | x faster | CPU ms | x less CPU "
              "| predict ms (1536x662 JPEG) | x faster |")  # fmt: skip
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    common.report(
        args,
        run_litert,
        row_line="| {export} | {size_mb:.1f} | {smaller:.2f} | {call_ms:.1f} | "
        "{call_speedup:.2f} | {call_cpu_ms:.1f} | {cpu_ratio:.2f} | {predict_ms:.1f} | "
        "{predict_speedup:.2f} |",
        line="\n{device}; {backbone} + 20-class head at {image_size} px, random weights; "
        "median of {calls} calls, best of {repeats} rounds; exports written in {export_s:.0f} s; "
        "1-minute load average {load_start:.1f} at the start, {load_end:.1f} at the end.",
    )


if __name__ == "__main__":
    sys.exit(common.run(main))
