"""Replay the memory cases of the reliability probe; print each case's peak RSS next to its limit.

    python benchmarks/memory.py [--work-dir /tmp/keras-geo-memory] [--out memory.md]

Every case runs the real command in its own process (`keras-geo predict`,
`keras-geo app`, `keras-geo data build`), its data segment capped
(RLIMIT_DATA) so that a regression cannot take the machine, and reads that
process's own peak RSS (`ru_maxrss`; for the app, a fresh `keras-geo app`
per case answering that one request, its `VmHWM` read before it is stopped
with SIGTERM).

The limit of a case is the budget's worth: what the same command takes for
a legitimate image at the pixel budget (a 2000x2000 photo-like PNG, 4 MP),
measured in the same run, plus 10%. A case passes when its peak stays
within it: a bomb may cost no more than the largest image keras-geo
accepts. Pixel budget `KERAS_GEO_MAX_PIXELS=4000000` (file budget 17 MB) for
predict and the app, so the bombs stay small; the build cases run at the
default budget with the probe's full sizes (1 GB zip members: they are
refused from their declared size, so only the zip's making takes time).
"""

import argparse
import functools
import os
import pathlib
import platform
import signal
import sys
import tempfile
import time
import zipfile

import numpy as np
from PIL import Image

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
import bombs  # noqa: E402

BUDGET = "4000000"
CAP = 3 * 2**30  # Per predict or build process; the app gets 2 GB above its start.
MARGIN = 1.10


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", default=None, help="default: a temporary folder")
    parser.add_argument("--out", default=None, help="also write the Markdown table here")
    args = parser.parse_args()
    work = pathlib.Path(args.work_dir or tempfile.mkdtemp(prefix="keras-geo-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    inputs = make_inputs(work)
    rows = predict_rows(work, inputs) + app_rows(work, inputs) + build_rows(work)
    table = render(rows)
    print(table)
    if args.out:
        pathlib.Path(args.out).write_text(table)


def make_inputs(work):
    """The bombs and the at-budget reference image, written to `work`."""
    from app_helpers import save_models

    if not (work / "run").is_dir():
        save_models(work)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (2000, 2000, 3), np.uint8)
    smooth = np.linspace(0, 255, 2000, dtype=np.float32)[None, :, None]
    pixels = (0.7 * smooth + 0.3 * noise).astype(np.uint8)  # A photo-like 4 MP image.
    Image.fromarray(pixels).save(work / "reference_4mp.png")
    inputs = {
        "reference": work / "reference_4mp.png",
        "gif800": work / "frames800.gif",
        "gif500": work / "frames500.gif",
        "png13000": work / "png13000.png",
        "oversized": work / "oversized.jpg",
        "fifo": work / "nobody_writes.jpg",
    }
    inputs["gif800"].write_bytes(bombs.gif(2000, 2000, 800))
    inputs["gif500"].write_bytes(bombs.gif(2000, 2000, 500))
    inputs["png13000"].write_bytes(bombs.png(13000, 13000))
    with open(inputs["oversized"], "wb") as f:
        f.write(b"\xff\xd8\xff" + bytes(18 * 10**6))
    if not inputs["fifo"].exists():
        os.mkfifo(inputs["fifo"])
    return inputs


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"}  # TMPDIR decides.
    return {**env, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_GEO_MAX_PIXELS": BUDGET, **extra}


def _size(path):
    path = pathlib.Path(path)
    if not path.is_file():
        return "-"
    size = path.stat().st_size
    return f"{size / 2**20:.1f} MB" if size >= 2**20 else f"{size / 2**10:.0f} KB"


def _outcome(code, err):
    lines = [line for line in err.splitlines() if line.startswith("keras-geo: error: ")]
    if not lines:
        return f"exit {code}, answered"
    reason = lines[-1].split(": ", 3)[-1]
    return f"exit {code}, refused: {reason[:60]}"


def predict_rows(work, inputs):
    rows = []
    for kind, model in (("run dir", work / "run"), ("SavedModel", work / "models" / "geo" / "1")):
        cases = [("reference: 2000x2000 PNG (4 MP, the budget)", inputs["reference"])]
        cases.append(("GIF 2000x2000, 800 frames", inputs["gif800"]))
        if kind == "run dir":
            cases += [
                ("PNG 13000x13000", inputs["png13000"]),
                ("/dev/zero", "/dev/zero"),
                ("FIFO with no writer", inputs["fifo"]),
                ("18 MB file (budget 17 MB)", inputs["oversized"]),
            ]
        reference = None
        for name, path in cases:
            code, peak, _, err = bombs.run_measured(
                ["predict", "--model", str(model), str(path)], env=_env(), cap_bytes=CAP
            )
            reference = reference or peak
            rows.append(
                {
                    "path": f"predict ({kind})",
                    "case": name,
                    "input": _size(path),
                    "outcome": _outcome(code, err),
                    "peak": peak,
                    "limit": reference * MARGIN,
                    "cap": f"{CAP / 2**30:.0f} GB",
                }
            )
    return rows


def app_rows(work, inputs):
    """One fresh app per case (a warm allocator would hide what a request costs)."""
    tmp = work / "app-tmp"
    tmp.mkdir(exist_ok=True)
    cases = [
        ("reference: 2000x2000 PNG (4 MP, the budget)", inputs["reference"]),
        ("GIF 2000x2000, 500 frames", inputs["gif500"]),
        ("PNG 13000x13000", inputs["png13000"]),
    ]
    rows = []
    for via, ask in (("API", _post), ("page", bombs.ask_page)):
        reference = None
        for name, path in cases:
            peak, answer, _ = _one_request(work, tmp, functools.partial(_ask, ask, path))
            reference = reference or peak
            rows.append(_app_row(f"app {via}", name, _size(path), _answer(answer), peak, reference))
    api_reference = rows[0]["limit"] / MARGIN
    peak, (status, sent), left = _one_request(
        work, tmp, lambda url: bombs.chunked_upload(url, "/api/predict", total_mb=1000)
    )
    name = "chunked body of 1000 MB, no Content-Length (limit 20 MB)"
    rows.append(_app_row("app API", name, f"{sent:.0f} MB sent", status, peak, api_reference))
    print(f"app stopped by SIGTERM; left in its TMPDIR: {left or 'nothing'}")
    return rows


def _ask(ask, path, url):
    return ask(url, path)


def _one_request(work, tmp, request):
    """Starts the app, makes one request, stops it with SIGTERM; returns its peak RSS."""
    app = bombs.ServedApp(
        work / "run", env=_env(TMPDIR=str(tmp)), cap_above_mb=2048, extra=["--max-upload-mb", "20"]
    )
    try:
        answer = request(app.url)
        peak = app.peak_mb()
    finally:
        code, _, err = app.stop(signal.SIGTERM)
    assert code == 0, err[-1000:]
    return peak, answer, sorted(p.name for p in tmp.iterdir())


def _app_row(path, case, size, outcome, peak, reference):
    return {
        "path": f"{path} (process peak)",
        "case": case,
        "input": size,
        "outcome": outcome,
        "peak": peak,
        "limit": reference * MARGIN,
        "cap": "start + 2 GB",
    }


def _post(url, path):
    import httpx

    path = pathlib.Path(path)
    with httpx.Client(base_url=url, trust_env=False, timeout=600) as http:
        response = http.post("/api/predict", files={"image": (path.name, path.read_bytes())})
    return response.status_code == 200, response.json().get("error") or response.json()


def _answer(answer):
    ok, output = answer
    return "answered" if ok else f"refused: {str(output)[:60]}"


def build_rows(work):
    from tfds_geoguessr.geoguessr.geoguessr_dataset_builder import read_labels
    from tfds_geoguessr.geoguessr.make_dummy_data import write_kaggle_folder

    clean = write_kaggle_folder(
        work / "kaggle", {c: 3 for c in read_labels("labels_top20.txt")}, size=64
    )
    bombed = work / "kaggle-bombs.zip"
    if not bombed.exists():
        with zipfile.ZipFile(bombed, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(clean.rglob("*.jpg")):
                archive.write(file, f"compressed_dataset/{file.relative_to(clean)}")
        gb = 2**30
        members = {f"compressed_dataset/France/zeros{i}.jpg": gb for i in range(3)}
        bombs.add_zero_members(bombed, members)
        marker = {"compressed_dataset/Japan/marker.jpg": gb}
        bombs.add_zero_members(bombed, marker, b"\xff\xd8\xff")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}  # The default budget: 50 MP, 201 MB.
    rows, reference = [], None
    for name, manual in (
        ("reference: 20 countries x 3 JPEGs", clean),
        ("zip: 3 zero-filled members of 1 GB + one of 1 GB after a JPEG marker", bombed),
    ):
        data_dir = work / f"tfds-{manual.stem}"
        argv = ["data", "build", "--manual-dir", str(manual), "--data-dir", str(data_dir)]
        code, peak, out, err = bombs.run_measured(
            [*argv, "--overwrite", "--num-workers", "2"], env=env, cap_bytes=CAP
        )
        reference = reference or peak
        skipped = next((line for line in out.splitlines() if line.startswith("skipped")), "")
        rows.append(
            {
                "path": "data build (2 workers)",
                "case": name,
                "input": _size(manual) if manual.is_file() else "folder",
                "outcome": f"exit {code}, {skipped}" if code == 0 else _outcome(code, err),
                "peak": peak,
                "limit": reference * MARGIN,
                "cap": f"{CAP / 2**30:.0f} GB",
            }
        )
    return rows


def render(rows):
    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo") as f:
        model = next((line.split(":", 1)[1].strip() for line in f if "model name" in line), cpu)
    lines = [
        f"Machine: {os.cpu_count()} cores, {model}; load average "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}; {time.strftime('%Y-%m-%d %H:%M')}",
        "",
        "| path | case | input | outcome | peak RSS MB | limit MB | within | cap |",
        "|---|---|---|---|---:|---:|---|---|",
    ]
    for row in rows:
        within = "yes" if row["peak"] <= row["limit"] else "NO"
        lines.append(
            f"| {row['path']} | {row['case']} | {row['input']} | {row['outcome']} | "
            f"{row['peak']:.0f} | {row['limit']:.0f} | {within} | {row['cap']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
