"""TensorFlow's start-up lines that `TF_CPP_MIN_LOG_LEVEL` no longer hides, dropped.

TensorFlow >= 2.19 logs its start-up through absl before `absl::InitializeLog()`
is called, so `TF_CPP_MIN_LOG_LEVEL` no longer hides those lines
(tensorflow/tensorflow#100442): every command would start with "WARNING: All
log messages before absl::InitializeLog() ...", oneDNN and cudart_stub INFO
lines and, on a machine without a GPU, an ERROR-level "failed call to cuInit"
(tensorflow/tensorflow#59849). `quiet_tensorflow_startup` drops exactly those,
told apart by absl's line format and severity letter. Checked on
tensorflow >=2.16,<2.22 (pinned in `setup.cfg`);
`tests/test_console.py::test_tensorflow_still_needs_the_workaround` fails
once TensorFlow no longer prints them, and this module can go.
"""

import functools
import os
import re
import sys
import tempfile

_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called"
_ABSL_LINE = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ [\w.-]+:\d+\] ")
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
# Logged at ERROR level where no CUDA driver or device is present: not an error on a CPU machine.
_NO_CUDA_DEVICE = re.compile(
    r"failed call to cuInit: .*(UNKNOWN ERROR \(303\)|no CUDA-capable device)"
)


def is_startup_noise(line, min_log_level):
    """True for a line of TensorFlow's start-up that `TF_CPP_MIN_LOG_LEVEL` should have hidden.

    Args:
        line: One line of stderr.
        min_log_level: `TF_CPP_MIN_LOG_LEVEL` (0: nothing is noise).

    >>> stub = "I0000 00:00:1796404770.78   14296 cudart_stub.cc:31] Could not find cuda drivers"
    >>> is_startup_noise(stub, 2), is_startup_noise(stub, 0)
    (True, False)
    >>> cuinit = "failed call to cuInit: INTERNAL: CUDA error: ... UNKNOWN ERROR (303)"
    >>> is_startup_noise(f"E0000 00:00:1796404780.94   14296 cuda_platform.cc:52] {cuinit}", 2)
    True
    >>> is_startup_noise("E0000 00:00:1796404780.94   14296 env.cc:9] Out of memory", 2)
    False
    """
    if min_log_level <= 0:
        return False
    if line.startswith(_ABSL_PREAMBLE):
        return True
    match = _ABSL_LINE.match(line)
    if not match:
        return False
    return _SEVERITY[match.group(1)] < min_log_level or bool(_NO_CUDA_DEVICE.search(line))


@functools.cache
def quiet_tensorflow_startup():
    """Imports TensorFlow and finds its devices, without the start-up lines it can no longer hide.

    Sets `TF_CPP_MIN_LOG_LEVEL` to 2 unless it is set. While TensorFlow loads
    and probes for GPUs, file descriptor 2 goes to a temporary file; then
    every line of it is written to stderr except the lines `is_startup_noise`
    names, so warnings and errors still reach the user. Runs once per
    process; `TF_CPP_MIN_LOG_LEVEL=0` shows everything.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    level = int(os.environ["TF_CPP_MIN_LOG_LEVEL"] or 0)
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines(True) if not is_startup_noise(line, level)]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()
