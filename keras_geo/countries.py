"""The 124 Kaggle countries: ISO code, display name, one point each, distances.

Which point stands for a country: the "centre" latitude/longitude of the
`countryinfo` library (`CountryInfo(name).latlng()`), rounded representative
points that match the CIA World Factbook's "geographic coordinates", e.g.
France (46, 2), Japan (36, 138), United States (38, -97). One point per
country is what the paper did (great-circle distances between country
centroids) and it is enough for the loss: the loss only needs to know that
Germany is nearer to France than Japan is. It is a coarse stand-in for where
the pictures were taken: the US point lies in Kansas while GeoGuessr coverage
spans the whole country, Russia's lies in Siberia while most coverage is in
the west. Distances between large neighbours are therefore rough (off by
hundreds of km); between distant countries the relative error is small.

Gaps filled here, no network needed:
- Five folder names countryinfo does not know under the Kaggle spelling are
  looked up by ISO code (`_COUNTRYINFO_ALIASES`).
- Where countryinfo has no centre point (Aland, Curacao, US Virgin Islands)
  its capital is used (small islands: the capital is within ~30 km of the
  centre); Antarctica has neither and gets the South Pole (-90, 0), the
  Factbook's "geographic coordinates" for it (`_POINTS`).

Override: a CSV with columns `name,latitude,longitude` and optionally
`iso2,display_name` replaces those fields for the countries it names and adds
countries it does not know. Pass `override_csv=PATH` to any function here, or
set the environment variable `KERAS_GEO_COUNTRIES_CSV=PATH` (then it applies
everywhere, also to losses and metrics rebuilt from a saved model). Tables are
cached per path for the life of the process.
"""

import csv
import dataclasses
import difflib
import functools
import io
import os

import numpy as np
from countryinfo import CountryInfo

from keras_geo.errors import UserError
from tfds_geoguessr.geoguessr import limits

ENV_VAR = "KERAS_GEO_COUNTRIES_CSV"
EARTH_RADIUS_KM = 6371.0088  # IUGG mean Earth radius.
MAX_CSV_BYTES = 10 * 2**20  # A countries CSV is a few KB; refuse a device or a huge file.

# The 124 folder names of the Kaggle dataset, as spelled there, sorted.
KAGGLE_COUNTRIES = (
    "Aland", "Albania", "American Samoa", "Andorra", "Antarctica", "Argentina",
    "Armenia", "Australia", "Austria", "Bangladesh", "Belarus", "Belgium",
    "Bermuda", "Bhutan", "Bolivia", "Botswana", "Brazil", "Bulgaria",
    "Cambodia", "Canada", "Chile", "China", "Colombia", "Costa Rica",
    "Croatia", "Curacao", "Czechia", "Denmark", "Dominican Republic",
    "Ecuador", "Egypt", "Estonia", "Eswatini", "Faroe Islands", "Finland",
    "France", "Germany", "Ghana", "Gibraltar", "Greece", "Greenland", "Guam",
    "Guatemala", "Hong Kong", "Hungary", "Iceland", "India", "Indonesia",
    "Iraq", "Ireland", "Isle of Man", "Israel", "Italy", "Japan", "Jersey",
    "Jordan", "Kenya", "Kyrgyzstan", "Laos", "Latvia", "Lebanon", "Lesotho",
    "Lithuania", "Luxembourg", "Macao", "Madagascar", "Malaysia", "Malta",
    "Martinique", "Mexico", "Monaco", "Mongolia", "Montenegro", "Mozambique",
    "Myanmar", "Nepal", "Netherlands", "New Zealand", "Nigeria",
    "North Macedonia", "Northern Mariana Islands", "Norway", "Pakistan",
    "Palestine", "Paraguay", "Peru", "Philippines", "Pitcairn Islands",
    "Poland", "Portugal", "Puerto Rico", "Qatar", "Reunion", "Romania",
    "Russia", "San Marino", "Senegal", "Serbia", "Singapore", "Slovakia",
    "Slovenia", "South Africa", "South Georgia and South Sandwich Islands",
    "South Korea", "South Sudan", "Spain", "Sri Lanka",
    "Svalbard and Jan Mayen", "Sweden", "Switzerland", "Taiwan", "Tanzania",
    "Thailand", "Tunisia", "Turkey", "US Virgin Islands", "Uganda", "Ukraine",
    "United Arab Emirates", "United Kingdom", "United States", "Uruguay",
    "Venezuela", "Vietnam",
)  # fmt: skip

# Kaggle names countryinfo 1.0 does not resolve, mapped to ISO 3166 alpha-2.
_COUNTRYINFO_ALIASES = {
    "Aland": "AX",
    "Curacao": "CW",
    "Macao": "MO",
    "South Georgia and South Sandwich Islands": "GS",
    "US Virgin Islands": "VI",
}
# Points for countries countryinfo has neither a centre nor a capital for.
_POINTS = {"Antarctica": (-90.0, 0.0)}
# Display names differ from folder names only to restore the diacritics.
_DISPLAY_NAMES = {"Aland": "Åland", "Curacao": "Curaçao", "Reunion": "Réunion"}


@dataclasses.dataclass(frozen=True)
class Country:
    """One class of the dataset.

    Attributes:
        name: Kaggle folder name, e.g. "United States" (the class name).
        iso2: ISO 3166-1 alpha-2 code, e.g. "US" ("" if unknown).
        display_name: Name for figures and reports, e.g. "Réunion".
        latitude: Degrees north of the point that stands for the country.
        longitude: Degrees east of that point.
    """

    name: str
    iso2: str
    display_name: str
    latitude: float
    longitude: float


def _from_countryinfo(name):
    # The first CountryInfo loads ~250 JSON files, once.
    info = CountryInfo(_COUNTRYINFO_ALIASES.get(name, name))
    point = _POINTS.get(name) or info.latlng() or info.capital_latlng()
    return Country(
        name=name,
        iso2=info.iso(2),
        display_name=_DISPLAY_NAMES.get(name, name),
        latitude=float(point[0]),
        longitude=float(point[1]),
    )


@functools.cache
def _builtin_table():
    return {name: _from_countryinfo(name) for name in KAGGLE_COUNTRIES}


def _parse_float(row, column, path, line):
    try:
        return float(row[column])
    except (TypeError, ValueError):
        raise UserError(
            f"{path}, line {line}: `{column}` must be a number in degrees. "
            f"Received: {column}={row[column]!r}"
        ) from None


def _parse_row(row, path, line, builtin):
    name = (row["name"] or "").strip()
    if not name:
        raise UserError(f"{path}, line {line}: empty `name`; give a Kaggle folder name.")
    latitude = _parse_float(row, "latitude", path, line)
    longitude = _parse_float(row, "longitude", path, line)
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise UserError(
            f"{path}, line {line}: latitude must be in [-90, 90] and longitude in "
            f"[-180, 180]. Received: latitude={latitude}, longitude={longitude}"
        )
    base = builtin.get(name)
    iso2 = (row.get("iso2") or "").strip() or (base.iso2 if base else "")
    display = (row.get("display_name") or "").strip() or (base.display_name if base else name)
    return Country(name, iso2, display, latitude, longitude)


def load_overrides(path):
    """Reads a countries CSV (`name,latitude,longitude[,iso2,display_name]`).

    Args:
        path: CSV file, UTF-8, with a header row.

    Returns:
        A dict `{name: Country}`; empty `iso2`/`display_name` cells keep the
        built-in values (or "" and `name` for a country not in the table).

    Example: a file holding `name,latitude,longitude` and
    `United States,39.8,-98.6` moves the US point to the geographic centre of
    the contiguous states.
    """
    try:
        text = limits.read_file(path, MAX_CSV_BYTES).decode("utf-8-sig")
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header, rows = reader.fieldnames or (), list(reader)
    except OSError as e:
        raise UserError(
            f"Cannot read countries CSV {path}: {e.strerror}. Check ${ENV_VAR}."
        ) from None
    except (ValueError, csv.Error) as e:  # Too large, not a file, not UTF-8, not CSV.
        reason = str(e).replace("too large: the file holds", "it holds")
        raise UserError(
            f"Countries CSV {path} is not a countries CSV ({reason}). Check ${ENV_VAR}."
        ) from None
    missing = {"name", "latitude", "longitude"} - set(header)
    if missing:
        raise UserError(
            f"Countries CSV {path} lacks column(s) {sorted(missing)}; its header must "
            "hold name,latitude,longitude (optionally iso2,display_name)."
        )
    builtin = _builtin_table()
    overrides = [_parse_row(row, path, i + 2, builtin) for i, row in enumerate(rows)]
    return {country.name: country for country in overrides}


@functools.cache
def _table(path):
    table = dict(_builtin_table())
    if path is not None:
        table.update(load_overrides(path))
    return table


def load_table(override_csv=None):
    """The country table, `{name: Country}`, with overrides applied.

    Args:
        override_csv: Optional CSV path (see `load_overrides`); if None, the
            `KERAS_GEO_COUNTRIES_CSV` environment variable is used if set.

    Returns:
        A new dict: the 124 Kaggle countries, then any extra CSV countries.
    """
    path = override_csv or os.environ.get(ENV_VAR) or None
    return dict(_table(os.path.abspath(path) if path else None))


def get_country(name, *, override_csv=None):
    """Returns the `Country` for a Kaggle folder name, e.g. "France".

    Raises:
        UserError: for a name not in the table, with the closest names.
    """
    table = load_table(override_csv)
    if name not in table:
        close = difflib.get_close_matches(str(name), table, n=3)
        hint = f"Did you mean {close}? " if close else ""
        raise UserError(
            f"Unknown country {name!r}. {hint}Use a Kaggle folder name (see "
            f"keras_geo.countries.KAGGLE_COUNTRIES) or add a row to a countries CSV "
            f"(${ENV_VAR})."
        )
    return table[name]


def all_countries(*, override_csv=None):
    """Returns every `Country`: the 124 Kaggle ones (sorted) then CSV extras."""
    return list(load_table(override_csv).values())


def coordinates(class_names, *, override_csv=None):
    """Returns `[C, 2]` float64 (latitude, longitude) in degrees, in class order."""
    points = [get_country(name, override_csv=override_csv) for name in class_names]
    table = [[country.latitude, country.longitude] for country in points]
    return np.array(table, dtype="float64").reshape(-1, 2)


def haversine_km(lat1, lon1, lat2, lon2):
    """Great-circle distance in km on a sphere of radius `EARTH_RADIUS_KM`.

    Arguments are degrees and broadcast like NumPy arrays.

    Example: `haversine_km(0, 0, 0, 90)` is a quarter of the equator,
    `pi / 2 * 6371.0088 = 10007.5` km.
    """
    lat1, lon1, lat2, lon2 = (
        np.radians(np.asarray(x, dtype="float64")) for x in (lat1, lon1, lat2, lon2)
    )
    a = (
        np.sin((lat2 - lat1) / 2) ** 2
        + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def distance_matrix_km(class_names, *, override_csv=None):
    """Returns the `[C, C]` float64 matrix of great-circle km between classes.

    Symmetric, zero on the diagonal. Example: for `["France", "Germany"]`
    (points (46, 2) and (51, 9)) it is about `[[0, 758], [758, 0]]`.
    """
    points = coordinates(class_names, override_csv=override_csv)
    lat, lon = points[:, 0], points[:, 1]
    matrix = haversine_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    np.fill_diagonal(matrix, 0.0)
    return matrix
