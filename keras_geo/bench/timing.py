"""Timing helpers shared by the benchmarks: warm-up, a timed loop, the result line.

Every benchmark ends with the line `images/s: <number>` (see `result_line`),
which `keras-geo bench report` parses; `--json FILE` writes the details.
"""

import json
import os
import platform
import time


def result_line(images_per_second):
    """The last line every `keras-geo bench` command prints.

    >>> result_line(221.04)
    'images/s: 221.0'
    """
    return f"images/s: {images_per_second:.1f}"


def timed_loop(step, *, seconds, warmup_steps=2, min_steps=1, max_steps=None):
    """Calls `step()` until `seconds` pass or `max_steps`; returns (images, seconds).

    `step()` returns how many images it processed. The first `warmup_steps`
    calls (graph tracing, thread pools, first files) are not timed.

    Args:
        step: callable returning an int (images processed by that call).
        seconds: wall-clock budget of the timed part (None: run `max_steps`).
        warmup_steps: untimed calls before the clock starts.
        min_steps: timed calls made even when `seconds` has passed.
        max_steps: stop after this many timed calls (None: no limit).
    """
    if seconds is None and max_steps is None:
        raise ValueError("`seconds` or `max_steps` must be given.")
    for _ in range(warmup_steps):
        step()
    images, steps = 0, 0
    start = time.perf_counter()
    while True:
        images += step()
        steps += 1
        elapsed = time.perf_counter() - start
        if max_steps is not None and steps >= max_steps:
            break
        if seconds is not None and steps >= min_steps and elapsed >= seconds:
            break
    return images, elapsed


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


def epoch_timer():
    """A Keras callback whose `seconds` list holds each epoch's wall-clock time."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        """Records the wall-clock seconds of every epoch."""

        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._start)

    return EpochTimer()
