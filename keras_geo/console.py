"""What the command line prints: Keras progress one way on a terminal, another in a log.

(TensorFlow's start-up lines are dropped by `keras_geo.compat.tensorflow_startup`.)
"""

import sys


def keras_verbose(verbose="auto"):
    """Resolves a `verbose="auto"` for Keras' `fit`, `predict` and `Progbar`.

    Keras' own "auto" draws a progress bar everywhere, which fills a log file
    or CI output with carriage-return frames; here it is 1 (progress bar) when
    stdout is a terminal and 2 (one line per epoch) otherwise. Other values
    pass through.

    >>> keras_verbose(0)
    0
    """
    if verbose != "auto":
        return verbose
    return 1 if sys.stdout.isatty() else 2
