#!/usr/bin/env bash
# Reproduces every table of docs/benchmarks.md in one run on this machine.
#
#   benchmarks/run_all.sh [WORK_DIR] [OUT]
#
# WORK_DIR (default /tmp/keras-geo-bench) receives fake 1536x662 Kaggle-layout
# frames (generated once, ~100 MB), the TFDS builds, per-benchmark JSON and
# logs; OUT (default benchmarks/results.md) the Markdown tables. Takes about
# 10-15 minutes on 2 cores; run it on an otherwise idle machine.
set -euo pipefail
WORK_DIR="${1:-/tmp/keras-geo-bench}"
OUT="${2:-benchmarks/results.md}"
echo "nproc: $(nproc); $(grep -m1 'model name' /proc/cpuinfo || true)"
uptime
python benchmarks/report.py --work-dir "$WORK_DIR" --out "$OUT"
cat "$OUT"
# The scaling claims use more data than the report's quick scaling run (whose
# 1x train split is under two batches): 300 / 600 / 1,200 frames.
python benchmarks/scaling.py --work-dir "$WORK_DIR/scaling-15" --per-country 15 \
    --factors 1,2,4 --image-size 112 --seconds 8
# keras-geo app over HTTP against direct predict (docs/benchmarks.md, "Web app").
python "$(dirname "$0")/app.py" --image-size 224 --requests 32 --repeats 2 --out "$WORK_DIR/app-224.md"
python "$(dirname "$0")/app.py" --image-size 32 --requests 32 --repeats 2 --out "$WORK_DIR/app-32.md"
# Parallel build and tf.data service (docs/benchmarks.md, "Past one machine").
python "$(dirname "$0")/distributed.py" --work-dir "$WORK_DIR/distributed" --repeats 3 \
    --out "$WORK_DIR/distributed.md"
# The first fine-tuning step, stock Keras compile vs compile_model (docs/benchmarks.md, "The first training step").
python "$(dirname "$0")/first_step.py" --repeats 2 --json > "$WORK_DIR/first_step.json"
# Exports side by side: SavedModel against LiteRT float32/float16/int8 (docs/benchmarks.md, "LiteRT").
python "$(dirname "$0")/litert.py" --image-size 224 --calls 20 --repeats 3 --json > "$WORK_DIR/litert.json"
# Peak memory of every memory case of the reliability probe (docs/benchmarks.md, "Memory budget").
python "$(dirname "$0")/memory.py" --work-dir "$WORK_DIR/memory" --out "$WORK_DIR/memory.md"
