"""Benchmarks behind `keras-geo bench` and docs/benchmarks.md."""
