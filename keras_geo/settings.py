"""The environment variables keras-geo reads, each checked with its bounds at start.

- `KERAS_GEO_MAX_PIXELS`: the pixel budget of one input image
  (`tfds_geoguessr.geoguessr.limits`); default 50000000; an integer from 1
  to 10**9.
- `KERAS_GEO_COUNTRIES_CSV`: the country points override
  (`keras_geo.countries`); default none; a readable CSV of at most 10 MB
  with the columns name, latitude, longitude.
- `KERAS_GEO_CHIEF_TIMEOUT`: seconds a tuning worker waits for its chief;
  default 120; more than 0 and at most 86400 (a day).

`check_environment()` runs before every command (`keras_geo.cli.main`), the
app included, so a bad value is one line at start, never a failure of every
request later; `inf`, `nan` and absurd sizes are refused like typos.
"""

import math
import os

from keras_geo.errors import UserError
from tfds_geoguessr.geoguessr import limits

COUNTRIES_CSV_ENV = "KERAS_GEO_COUNTRIES_CSV"  # `keras_geo.countries.ENV_VAR`.
CHIEF_TIMEOUT_ENV = "KERAS_GEO_CHIEF_TIMEOUT"
CHIEF_TIMEOUT_S = 120.0
MAX_CHIEF_TIMEOUT_S = 86400.0  # A day: longer is no timeout at all.


def check_environment():
    """Raises `UserError` naming the first variable of the table that is set wrongly."""
    max_pixels()
    chief_timeout()
    if os.environ.get(COUNTRIES_CSV_ENV):
        from keras_geo import countries  # Reads and checks the CSV (and caches it).

        countries.load_table()


def max_pixels():
    """`tfds_geoguessr.geoguessr.limits.max_pixels()`, its error a `UserError`."""
    try:
        return limits.max_pixels()
    except ValueError as error:
        raise UserError(str(error)) from None


def chief_timeout():
    """Seconds a tuning worker waits for its chief: `$KERAS_GEO_CHIEF_TIMEOUT`, default 120.

    >>> chief_timeout()
    120.0
    """
    text = os.environ.get(CHIEF_TIMEOUT_ENV, "").strip()
    try:
        value = float(text) if text else CHIEF_TIMEOUT_S
    except ValueError:
        value = math.nan
    if not 0 < value <= MAX_CHIEF_TIMEOUT_S:  # Also refuses nan and inf.
        raise UserError(
            f"{CHIEF_TIMEOUT_ENV} must be a number of seconds > 0 and at most "
            f"{MAX_CHIEF_TIMEOUT_S:g} (a day). Received: {text[:40]!r}"
        )
    return value
