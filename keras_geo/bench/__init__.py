"""Benchmarks behind `keras-geo bench` and BENCHMARKS.md."""
