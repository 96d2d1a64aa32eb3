"""Benchmark `keras-geo app`: requests/s and latency over HTTP against calling the model directly.

    python benchmarks/app.py [--image-size 224] [--requests 64] [--out benchmarks/app.md]

Builds the paper's model (ResNet50 + 20-country head, random weights: speed
does not depend on them) as a run directory, then measures in one run:

Both app processes start first; then the rows run in turn, `--repeats` rounds,
and each row keeps its best round (other jobs on a shared machine only ever
slow a round down).

- `direct`: `keras_geo.predict.predict_bytes` called in this process, one
  image after another (the baseline: no HTTP, no batching);
- `app`: `keras-geo app` started as a separate process, answering
  `POST /api/predict` from 1 and from 8 concurrent clients (httpx threads),
  with request batching on (`--max-batch 8`, the default) and off
  (`--max-batch 1`).

The images are synthetic 1536x662 JPEG frames (the Kaggle size), so decoding
and resizing are part of every request. Prints a Markdown table (ratios
against `direct`) and writes it to `--out`. Besides wall-clock requests/s it
gives requests per CPU-second of the serving process, which other jobs on a
shared machine do not change (Linux: read from /proc).
"""

import argparse
import concurrent.futures
import io
import os
import pathlib
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np


def frames(count, seed=0):
    """`count` synthetic scenes upscaled to 1536x662 JPEG bytes (the Kaggle frame size)."""
    from PIL import Image

    from tfds_geoguessr.geoguessr import synthetic

    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        scene = synthetic.draw_scene(synthetic.COUNTRIES[i % len(synthetic.COUNTRIES)], rng, 256)
        buffer = io.BytesIO()
        Image.fromarray(scene).resize((1536, 662)).save(buffer, format="JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def save_run(folder, image_size):
    from keras_geo import runs
    from keras_geo.config import TrainConfig
    from keras_geo.model import build_model
    from tfds_geoguessr.geoguessr import synthetic

    names = list(synthetic.COUNTRIES)
    model = build_model(len(names), image_size=image_size, weights=None)
    config = TrainConfig(image_size=image_size, weights="none")
    folder.mkdir(parents=True, exist_ok=True)
    config.to_json(folder / runs.CONFIG_FILE)
    runs.write_class_names(folder, names)
    runs.save_model(model, folder / runs.MODEL_FILE, names, config)
    return folder


def summary(latencies, wall, cpu_seconds):
    ms = sorted(1000 * t for t in latencies)
    return {
        "requests_per_s": len(ms) / wall,
        "requests_per_cpu_s": len(ms) / cpu_seconds,
        "p50_ms": statistics.median(ms),
        "p95_ms": ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))],
    }


def cpu_seconds(pid=None):
    """User + system CPU seconds of this process (pid None) or of process `pid` (Linux)."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_direct(predictor, images, warmup=3):
    from keras_geo import predict

    for data in images[:warmup]:
        predict.predict_bytes(predictor, data, file="warmup")
    latencies = []
    start, cpu = time.perf_counter(), cpu_seconds()
    for data in images:
        t0 = time.perf_counter()
        predict.predict_bytes(predictor, data, file="frame.jpg")
        latencies.append(time.perf_counter() - t0)
    return summary(latencies, time.perf_counter() - start, cpu_seconds() - cpu)


def start_app(model, max_batch):
    """Starts `keras-geo app` for `model` (None: the bundled model); returns (process, url)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "keras_geo.cli.main", "app"]
    command += [] if model is None else ["--model", str(model)]
    command += ["--port", str(port), "--max-batch", str(max_batch)]
    process = subprocess.Popen(
        command,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/api/health", trust_env=False, timeout=5)
            return process, url
        except httpx.TransportError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError("keras-geo app did not start in 300 s")


def measure_app(process, url, images, clients, warmup=3):
    import httpx

    local = __import__("threading").local()

    def post(data):
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=url, trust_env=False, timeout=300)
        t0 = time.perf_counter()
        response = local.client.post("/api/predict", files={"image": ("frame.jpg", data)})
        response.raise_for_status()
        return time.perf_counter() - t0

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(post, images[: max(warmup, clients)]))
        start, cpu = time.perf_counter(), cpu_seconds(process.pid)
        latencies = list(pool.map(post, images))
        wall = time.perf_counter() - start
    return summary(latencies, wall, cpu_seconds(process.pid) - cpu)


def machine():
    cpu = platform.processor() or ""
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    system = f"{platform.system()}, Python {platform.python_version()}"
    return f"{os.cpu_count()} CPU cores ({cpu}), {system}"


def table(rows, baseline):
    lines = [
        "| setting | clients | requests/s | x direct | requests/CPU-s | x direct "
        "| p50 ms | p95 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, clients, result in rows:
        ratio = result["requests_per_s"] / baseline["requests_per_s"]
        cpu_ratio = result["requests_per_cpu_s"] / baseline["requests_per_cpu_s"]
        lines.append(
            f"| {name} | {clients} | {result['requests_per_s']:.1f} | {ratio:.2f} | "
            f"{result['requests_per_cpu_s']:.1f} | {cpu_ratio:.2f} | "
            f"{result['p50_ms']:.0f} | {result['p95_ms']:.0f} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--clients", default="1,8", help="comma-separated client counts")
    parser.add_argument("--repeats", type=int, default=2, help="alternating rounds; best kept")
    parser.add_argument("--out", default=None, help="also write the Markdown here")
    args = parser.parse_args(argv)
    clients = [int(c) for c in args.clients.split(",")]
    images = frames(args.requests)
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="keras-geo-bench-app-") as tmp:
        run_dir = save_run(pathlib.Path(tmp) / "run", args.image_size)
        from keras_geo import predict

        predictor = predict.load_predictor(run_dir)
        apps = {max_batch: start_app(run_dir, max_batch) for max_batch in (8, 1)}
        settings = [("direct predict_bytes (baseline)", None, 1)]
        settings += [(f"app, --max-batch {b}", b, n) for n in clients for b in apps]
        best = {}
        try:
            for _ in range(args.repeats):  # Rows alternate; each keeps its best repeat.
                for name, max_batch, n in settings:
                    if max_batch is None:
                        result = measure_direct(predictor, images)
                    else:
                        result = measure_app(*apps[max_batch], images, n)
                    key = (name, n)
                    if key not in best or result["requests_per_s"] > best[key]["requests_per_s"]:
                        best[key] = result
        finally:
            for process, _ in apps.values():
                process.terminate()
                process.wait(timeout=60)
    rows = [(name, n, best[(name, n)]) for name, _, n in settings]
    direct = rows[0][2]
    text = (
        f"Machine: {machine()}; 1-minute load average {load_start:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end. Model: ResNet50 + 20-class head at "
        f"{args.image_size} px (random weights), {args.requests} requests of 1536x662 JPEG "
        f"frames per row, best of {args.repeats} alternating rounds. requests/CPU-s: "
        "requests per CPU-second of the serving process "
        "(this one for `direct`, the app's for the others; the HTTP clients not counted).\n\n"
        + table(rows, direct)
    )
    print(text)
    if args.out:
        pathlib.Path(args.out).write_text(text + "\n")
    print(f"requests/s: {rows[-1][2]['requests_per_s']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
