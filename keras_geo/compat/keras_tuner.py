"""KerasTuner 1.4 behaviour `keras_geo.tuning` relies on beyond its public API.

- `DeclaredSpace`: a `keras_tuner.Tuner` mixin whose initial search space
  comes from `HyperModel.declare_hyperparameters` alone. Upstream's private
  `Tuner._populate_initial_space` (split out "for AutoKeras to override",
  keras-team/keras-tuner#174; overriding it is the maintainers' advice in
  keras-team/keras-tuner#604) builds the model once per condition to find
  conditional hyperparameters: a throw-away ResNet50 for a space that has
  none.
- `consecutive_failures_limit`: the oracle stops a search whose
  `max_consecutive_failed_trials` trials failed in a row with a plain
  `RuntimeError` (keras-team/keras-tuner#925, #926) that only its text tells
  apart (a distributed worker gets it as a gRPC error), so the text is read
  here, once.

Checked on keras-tuner 1.4.7 and 1.4.8 (setup.cfg pins `>=1.4.7,<1.5`);
`tests/test_compat.py` fails when either changes upstream.
"""

import re

_STOP_TEXT = "consecutive failures"  # "Number of consecutive failures exceeded the limit of 3."


class DeclaredSpace:
    """Mixin for a `keras_tuner.Tuner`: the space is declared, no model is built for it."""

    def _populate_initial_space(self):
        hp = self.oracle.get_space()
        self.hypermodel.declare_hyperparameters(hp)
        self.oracle.update_space(hp)


def consecutive_failures_limit(error):
    """The limit KerasTuner named when it stopped a search for failed trials, else None.

    Returns:
        The limit (int), 0 when the text names none, or None when `error`
        is not that stop.

    Example: `RuntimeError("Number of consecutive failures exceeded the limit
    of 3.")` gives 3.
    """
    text = str(error)
    if _STOP_TEXT not in text:
        return None
    limit = re.search(r"limit of (\d+)", text)
    return int(limit.group(1)) if limit else 0
