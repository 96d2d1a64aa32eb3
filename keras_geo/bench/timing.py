"""Timing helpers shared by the benchmarks: warm-up, a timed loop, the result line.

Every benchmark ends with the line `images/s: <number>` (see `result_line`),
which `benchmarks/report.py` parses; with `--json` a benchmark prints its
details as one JSON document instead.
"""

import collections
import json
import multiprocessing
import os
import platform
import time

import keras


def result_line(images_per_second):
    """The last line every `keras-geo bench` command prints.

    >>> result_line(221.04)
    'images/s: 221.0'
    """
    return f"images/s: {images_per_second:.1f}"


Timing = collections.namedtuple("Timing", ["images", "seconds", "cpu_seconds"])


def cpu_seconds(include_children=False):
    """CPU seconds (user + system) used so far by this process (all threads).

    With `include_children`, live child processes (e.g. a worker pool) are
    added, read from /proc (Linux; elsewhere they count 0).
    """
    total = time.process_time()
    if include_children:
        for child in multiprocessing.active_children():
            total += _proc_cpu_seconds(child.pid)
    return total


def _proc_cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_loop(step, *, seconds, warmup_steps=2, min_steps=1, max_steps=None, cpu_clock=None):
    """Calls `step()` until `seconds` pass or `max_steps`; returns a `Timing`.

    `step()` returns how many images it processed. The first `warmup_steps`
    calls (graph tracing, thread pools, first files) are not timed. CPU time
    is the machine-load-robust twin of wall time: images per CPU-second
    compare two pipelines fairly even when other jobs share the cores.

    Args:
        step: callable returning an int (images processed by that call).
        seconds: wall-clock budget of the timed part (None: run `max_steps`).
        warmup_steps: untimed calls before the clock starts.
        min_steps: timed calls made even when `seconds` has passed.
        max_steps: stop after this many timed calls (None: no limit).
        cpu_clock: callable returning CPU seconds (default `cpu_seconds`).

    Returns:
        `Timing(images, seconds, cpu_seconds)` of the timed part.
    """
    if seconds is None and max_steps is None:
        raise ValueError("`seconds` or `max_steps` must be given.")
    cpu_clock = cpu_clock or cpu_seconds
    for _ in range(warmup_steps):
        step()
    images, steps = 0, 0
    cpu_start, start = cpu_clock(), time.perf_counter()
    while True:
        images += step()
        steps += 1
        elapsed = time.perf_counter() - start
        if max_steps is not None and steps >= max_steps:
            break
        if seconds is not None and steps >= min_steps and elapsed >= seconds:
            break
    return Timing(images, elapsed, cpu_clock() - cpu_start)


def rates(timing):
    """`images_per_second` (wall) and `images_per_cpu_second` of a `Timing`."""
    return {
        "images": timing.images,
        "seconds": timing.seconds,
        "cpu_seconds": timing.cpu_seconds,
        "images_per_second": timing.images / timing.seconds,
        "images_per_cpu_second": timing.images / max(timing.cpu_seconds, 1e-9),
    }


def cpu_model():
    """The CPU model name from /proc/cpuinfo (or `platform.processor()`)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine():
    """A dict naming the machine: cores and CPU model."""
    return {"cores": os.cpu_count(), "cpu": cpu_model()}


def write_json(path, record):
    """Writes `record` (a dict) as JSON to `path` when `path` is not None."""
    if path is None:
        return
    with open(path, "w") as f:
        json.dump(record, f, indent=2, sort_keys=True)
        f.write("\n")


def epoch_timer(clock=time.perf_counter):
    """A Keras callback whose `seconds` list holds each epoch's time by `clock`.

    Args:
        clock: Seconds now; the default is wall-clock time (a CPU-time
            function gives each epoch's CPU seconds).
    """

    class EpochTimer(keras.callbacks.Callback):
        """Records the seconds of every epoch."""

        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = clock()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(clock() - self._start)

    return EpochTimer()
