"""`keras_geo.compat.tensorflow_startup`: TensorFlow's start-up chatter goes, the rest stays."""

import os
import subprocess
import sys

from keras_geo.compat import tensorflow_startup

NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796404770.788447   424242 port.cc:153] oneDNN custom operations are on.",
    "I0000 00:00:1796404770.791349   424242 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used.",
    "E0000 00:00:1796404780.945783   424242 cuda_platform.cc:52] failed call to cuInit: "
    "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
]
KEPT = [
    "W0000 00:00:1796404780.945783   424242 env.cc:9] a warning",
    "E0000 00:00:1796404780.945783   424242 env.cc:9] a real error",
    "keras-geo: warning: anything of ours",
]


def _run(code, **env):
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
    )


def test_start_up_noise_is_what_the_level_hides_plus_the_cpu_only_cuinit_error():
    assert all(tensorflow_startup.is_startup_noise(line, 2) for line in NOISE)
    assert not any(tensorflow_startup.is_startup_noise(line, 2) for line in KEPT[1:])
    assert tensorflow_startup.is_startup_noise(KEPT[0], 2)  # A W-line: level 2 hides warnings.
    assert not any(tensorflow_startup.is_startup_noise(line, 0) for line in NOISE + KEPT)


def test_quiet_start_up_drops_the_noise_and_passes_the_rest():
    """Lines written to file descriptor 2 while TensorFlow starts: the noise goes, the rest stays.

    (TensorFlow's own start-up lines are printed by the first import, outside the filter.)
    """
    lines = "\n".join(NOISE[:1] + KEPT[1:] + NOISE[1:]) + "\n"
    code = (
        "import os, sys, tensorflow as tf\n"
        "real = tf.config.list_physical_devices\n"
        f"tf.config.list_physical_devices = lambda: (os.write(2, {lines.encode()!r}), real())[1]\n"
        "from keras_geo.compat import tensorflow_startup\n"
        "tensorflow_startup.quiet_tensorflow_startup()\n"
        "print('after', file=sys.stderr)\n"
    )
    result = _run(code, TF_CPP_MIN_LOG_LEVEL="2")
    assert result.stderr.splitlines()[-3:] == [*KEPT[1:], "after"]
    assert not any(line in result.stderr for line in NOISE[1:])  # pid 424242: ours.


def test_tensorflow_still_needs_the_workaround():
    """Fails once TensorFlow honours TF_CPP_MIN_LOG_LEVEL at start-up (tensorflow#100442):
    then `keras_geo.compat.tensorflow_startup` can go."""
    result = _run(
        "import tensorflow as tf; tf.config.list_physical_devices()", TF_CPP_MIN_LOG_LEVEL="2"
    )
    assert any(tensorflow_startup.is_startup_noise(line, 2) for line in result.stderr.splitlines())
