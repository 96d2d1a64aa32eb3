"""`benchmarks/distributed.py`'s build tables, on tiny frames (no build)."""

import io
import pathlib
import sys

import numpy as np
from PIL import Image

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # The scripts import each other as top-level modules.

import distributed  # noqa: E402


def _row(workers, wall_s, cpu_s, images=100):
    return {"workers": workers, "images": images, "wall_s": wall_s, "cpu_s": cpu_s}


def test_ceiling_converts_every_frame_in_one_and_in_two_processes(tmp_path):
    rng = np.random.default_rng(0)
    for index in range(3):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (24, 40, 3), np.uint8)).save(buffer, format="JPEG")
        (tmp_path / f"canvas_{index}.jpg").write_bytes(buffer.getvalue())

    rows = distributed.convert_benchmark(tmp_path, repeats=1, cores=2)

    assert [(row["workers"], row["images"]) for row in rows] == [(1, 3), (2, 3)]
    assert all(row["wall_s"] > 0 and row["cpu_s"] > 0 for row in rows)


def test_build_tables_give_ratios_against_one_worker():
    build = {
        "workers": [_row(1, 10.0, 10.0), _row(2, 5.0, 10.0)],
        "ceiling": [_row(1, 4.0, 4.0), _row(2, 2.5, 4.5)],
        "scaling": [
            {"factor": f, "workers": 2, "images": 100 * f, "wall_s": 5.0 * f, "cpu_s": 9.0 * f}
            for f in (1, 2)
        ],
    }
    lines = distributed._build_lines(build)

    assert "| `--num-workers 2` | 100 | 5.0 | 20.0 | 10.0 | 2.00 | 2.00x |" in lines
    assert "| 2 process(es) | 100 | 2.5 | 40.0 | 22.2 | 1.80 | 1.60x |" in lines
    assert "| 2x | 200 | 10.0 | 2.00 | 2.00 |" in lines
