#!/usr/bin/env bash
# Reproduces every table of BENCHMARKS.md in one run on this machine.
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
keras-geo bench report --work-dir "$WORK_DIR" --out "$OUT"
cat "$OUT"
